"""STORE and UID STORE (docs/spec/servers.md §3.10; docs/decisions.md: keywords stored)."""
from __future__ import annotations

from upas.mail.lock import LockError
from upas.imap4d import parser as p
from upas.imap4d import rev2
from upas.imap4d.mailbox import Mailbox, Message
from upas.imap4d.request import Request


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
        # system flags first: the common STORE names no keyword
        if op == "":
            new = sysflags | (m.flags & {"\\Recent"})
        elif op == "+":
            new = m.flags | sysflags
        else:
            new = m.flags - sysflags
        changed = new != m.flags
        if changed:
            m.flags = new
        if kws or op == "":
            words = _keywords(op, m.keywords, kws)
            if words != m.keywords:
                m.keywords, changed = words, True
        return changed
    return change


def _keywords(op: str, have: list[str], kws: list[str]) -> list[str]:
    if op == "":
        return _dedup(kws)
    if op == "+":
        return _dedup(have + kws)
    low = {k.lower() for k in kws}
    return [k for k in have if k.lower() not in low]


def _dedup(kws: list[str]) -> list[str]:
    seen, out = set(), []
    for k in kws:
        if k.lower() not in seen:
            seen.add(k.lower())
            out.append(k)
    return out


def store(s, req: Request) -> None:
    ranges, op, silent, flags = req.args
    box: Mailbox = s.box
    if box.readonly:            # EXAMINE: RFC 3501 6.3.2 (Plan 9 stored anyway)
        s.no(req, "mailbox is read-only")
        return
    s.report(expunges=req.uid, uid=req.uid)   # what changed first (RFC 3501 5.2, 7.4.1)
    msgs, ok = s.resolve(ranges, req.uid)
    if not req.uid and any(m.expunged for m in msgs):
        ok = False
    msgs = [m for m in msgs if not m.expunged]
    try:
        box.modify(msgs, changer(op, flags))
    except LockError:
        raise                               # the session answers NO [INUSE]
    except Exception as e:
        s.log(f"store: {e}")
        s.no(req)
        return
    for m in msgs:
        if m in box.flag_changes:
            box.flag_changes.remove(m)      # reported here
    if op != "-":
        box.keywords.update(f for f in flags if not f.startswith("\\"))
    s.announce_keywords()                   # before a FETCH shows them
    if not silent:
        _report(s, box, msgs, req.uid)
    if ok:
        s.ok(req)
    else:
        s.no(req)


def _report(s, box: Mailbox, msgs: list[Message], uid: bool) -> None:
    """`* n FETCH (FLAGS (...))` for each message, in one write; each
    distinct set of flags and keywords formatted once."""
    seqs = box.seqs(msgs)
    shown: dict[tuple, str] = {}
    out = []
    for m, n in zip(msgs, seqs):
        key = (frozenset(m.flags), *m.keywords)
        fl = shown.get(key)
        if fl is None:
            fl = shown[key] = rev2.flag_text(s, m)
        out.append(f"* {n} FETCH (UID {m.uid} FLAGS ({fl}))\r\n" if uid
                   else f"* {n} FETCH (FLAGS ({fl}))\r\n")
    s.send("".join(out).encode("utf-8", "surrogateescape"))
