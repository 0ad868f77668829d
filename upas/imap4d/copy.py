"""COPY and UID COPY with COPYUID (docs/spec/servers.md §3.10, docs/decisions.md: INBOX
mapped everywhere).

Each copy is the source's `unixheader` + `raw` (its own From line kept,
ending in LF), stored by the delivery code APPEND uses (append.deliver:
upas/mbappend under the mail lock, then the target's .imp through a
Mailbox view, so the copies get the next uids there); flags and keywords
are copied, and the copies are \\Recent in the target.
"""
from __future__ import annotations

from upas import ns as nsmod
from upas.imap4d import append, names
from upas.imap4d import parser as p
from upas.imap4d.mailbox import Mailbox, Message
from upas.imap4d.prefetch import Files, evaluate
from upas.imap4d.request import Request


def parse_copy(r: p.Reader):
    ranges = r.seqset()
    r.sp()
    return ranges, r.astring()


def mbox_entry(unixheader: bytes, raw: bytes) -> bytes:
    """One stored message: From line + message ending in LF (the digest
    covers exactly this), without the separating blank line."""
    if not unixheader.endswith(b"\n"):
        unixheader += b"\n"
    if not raw.endswith(b"\n"):
        raw += b"\n"
    return unixheader + raw


def stored_entries(box: Mailbox, msgs: list[Message]) -> list[bytes]:
    """mbox_entry of each message, the files of many read at once."""
    files = Files(box.view)
    return [e for _, e in evaluate(files, msgs, lambda m: mbox_entry(
        files.read(m, "unixheader"), files.read(m, "raw")), lambda m: ("unixheader", "raw"))]


def target_path(s, req: Request, target: str) -> str | None:
    """The path of COPY's or MOVE's target mailbox; None once the NO is
    sent for a bad name or, with [TRYCREATE] (RFC 3501 6.4.7), for a
    mailbox that does not exist (after the changes: COPY and MOVE may tell
    of expunges)."""
    try:
        name = names.parse(target)
    except names.BadName:
        s.no(req, "bad mailbox")
        return None
    path = names.box_path(s.user, name.path)
    try:
        st = s.ns.stat(path)
    except nsmod.Error:
        st = None
    if st is None or st.isdir:
        s.report(expunges=True, uid=req.uid)
        s.tagged(req, f"NO [TRYCREATE] {req.name} mailbox does not exist")
        return None
    return path


def copy(s, req: Request) -> None:
    ranges, target = req.args
    box: Mailbox = s.box
    path = target_path(s, req, target)
    if path is None:
        return
    s.report(expunges=req.uid, uid=req.uid)   # what changed first (RFC 3501 5.2, 7.4.1)
    msgs, ok = s.resolve(ranges, req.uid)
    if not ok or any(m.expunged for m in msgs):
        s.no(req)
        return
    try:
        entries = stored_entries(box, msgs)
    except nsmod.Error as e:
        s.log(f"copy: {e}")
        s.no(req)
        return
    items = [append.Item(e, set(m.flags) - {"\\Recent"}, list(m.keywords))
             for e, m in zip(entries, msgs)]
    try:
        validity, uids = append.deliver(s, path, items) if items else (0, [])
    except Exception as e:
        s.log(f"copy: {e}")
        s.no(req)
        return
    code = None
    if msgs and all(uids):
        code = f"COPYUID {validity} {','.join(str(m.uid) for m in msgs)} {','.join(map(str, uids))}"
    s.ok(req, code=code)
