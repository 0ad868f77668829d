"""STORE and UID STORE (servers.md 3.10; decisions.md: keywords stored)."""
from __future__ import annotations

from upas.imap4d import parser as p
from upas.imap4d.mailbox import Mailbox, Message
from upas.imap4d.table import NO_EXPUNGES, SELECTED, Request, command


def parse_store(r: p.Reader):
    ranges = r.seqset()
    r.sp()
    try:
        word = r.atom().upper()
    except p.ParseError:
        raise p.ParseError("illegal store attribute") from None
    op = word[0] if word[:1] in "+-" else ""
    word = word.lstrip("+-")
    if word not in ("FLAGS", "FLAGS.SILENT"):
        raise p.ParseError("illegal store attribute")
    if r.peek() != 0x20:
        raise p.ParseError("no flags given")
    r.sp()
    return ranges, op, word.endswith(".SILENT"), r.flag_list()


def changer(op: str, flags: list[str]):
    """change(msg) -> bool for replace (""), add ("+") or remove ("-");
    \\Recent can never be changed."""
    sysflags = {f for f in flags if f.startswith("\\") and f != "\\Recent"}
    kws = [f for f in flags if not f.startswith("\\")]

    def change(m: Message) -> bool:
        before = (set(m.flags), list(m.keywords))
        recent = m.flags & {"\\Recent"}
        if op == "":
            m.flags = sysflags | recent
            m.keywords = _dedup(kws)
        elif op == "+":
            m.flags |= sysflags
            m.keywords = _dedup(m.keywords + kws)
        else:
            m.flags -= sysflags
            low = {k.lower() for k in kws}
            m.keywords = [k for k in m.keywords if k.lower() not in low]
        return (m.flags, m.keywords) != before
    return change


def _dedup(kws: list[str]) -> list[str]:
    seen, out = set(), []
    for k in kws:
        if k.lower() not in seen:
            seen.add(k.lower())
            out.append(k)
    return out


@command("STORE", states=SELECTED, parse=parse_store, updates=NO_EXPUNGES, uid=True)
def store(s, req: Request) -> None:
    ranges, op, silent, flags = req.args
    box: Mailbox = s.box
    box.check()
    msgs, ok = s.resolve(ranges, req.uid)
    if not req.uid and any(m.expunged for m in msgs):
        ok = False
    msgs = [m for m in msgs if not m.expunged]
    try:
        box.modify(msgs, changer(op, flags))
    except Exception as e:                  # the lock could not be had
        s.log(f"store: {e}")
        s.no(req)
        return
    for m in msgs:
        if m in box.flag_changes:
            box.flag_changes.remove(m)      # reported here
    if not silent:
        for m in msgs:
            seq = box.seq(m)
            fl = " ".join(m.flag_list())
            s.untagged(f"{seq} FETCH (UID {m.uid} FLAGS ({fl}))" if req.uid
                       else f"{seq} FETCH (FLAGS ({fl}))")
    if ok:
        s.ok(req)
    else:
        s.no(req)
