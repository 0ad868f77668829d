"""EXPUNGE and UID EXPUNGE (RFC 4315)."""
from __future__ import annotations

from upas.imap4d import condstore
from upas.imap4d.parser import Reader
from upas.imap4d.request import Request


def parse_expunge(r: Reader):
    """Nothing for EXPUNGE; a UID set for UID EXPUNGE (checked in the handler)."""
    return r.seqset()


def expunge_handler(s, req: Request) -> None:
    box = s.box
    if req.uid and req.args is None:
        s.bad(req, "bad syntax")
        return
    if not req.uid and req.args is not None:
        s.bad(req, "bad syntax")
        return
    if box.readonly:
        s.no(req, "some messages not expunged")
        return
    box.check()
    chosen = None
    if req.uid:
        chosen = {id(m) for m in s.resolve(req.args, uid=True)[0]}
    box.expunge(lambda m: "\\Deleted" in m.flags and (chosen is None or id(m) in chosen))
    s.report(expunges=True, uid=req.uid)
    s.current = None                     # reported just now
    # the MODSEQ the expunges took the mailbox to, once CONDSTORE is on (RFC 7162)
    code = f"HIGHESTMODSEQ {box.modseqs.highest}" if condstore.enabled(s) else None
    s.ok(req, "messages erased", code=code)
