"""SELECT, EXAMINE and CLOSE (docs/spec/servers.md §3.10, docs/decisions.md)."""
from __future__ import annotations

from upas.imap4d import condstore, folders, names, rev2
from upas.imap4d.mailbox import Mailbox, MailboxError
from upas.imap4d.parser import Reader
from upas.imap4d.request import Request, State

FLAGS = "FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)"
# every response code is followed by a text (RFC 3501 resp-text; Plan 9
# sent none: docs/decisions.md); the texts are the RFC's own examples
PERMANENT = "OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Draft \\Deleted \\*)] Limited"


def flags_lines(keywords) -> list[str]:
    """FLAGS and PERMANENTFLAGS with the keywords the mailbox's messages
    have (Plan 9 lists the system flags only: docs/decisions.md)."""
    kw = "".join(" " + k for k in sorted(keywords))
    return [FLAGS[:-1] + kw + ")", PERMANENT.replace(" \\*)", kw + " \\*)")]


def parse_mailbox(r: Reader):
    """The mailbox, then RFC 7162's select parameters, if any."""
    return (r.astring(), *condstore.parse_select_params(r))


def close_box(s) -> None:
    """Leave the selected state without expunging (docs/decisions.md: only
    CLOSE and EXPUNGE remove mail; CLOSE does its own expunge first)."""
    if s.box is not None:
        s.box.close()
    s.box = None
    s.box_name = ""
    if s.state == State.SELECTED:
        s.state = State.AUTH


def select_common(s, req: Request, readonly: bool) -> None:
    raw, cond, resync = req.args
    if resync is not None and not condstore.qresync(s):
        s.bad(req, "QRESYNC not enabled")       # RFC 7162 3.2.5
        return
    if s.box is not None and (condstore.qresync(s) or rev2.on(s)):
        # RFC 7162 3.2.11, RFC 9051 7.1
        s.untagged("OK [CLOSED] Previous mailbox closed")
    close_box(s)
    try:
        name = names.parse(raw)
    except names.BadName:
        s.no(req, "bad mailbox")
        return
    shown = names.display(name.path)
    box = Mailbox(s.ns, names.box_path(s.user, name.path), readonly=readonly)
    try:
        box.open()
    except MailboxError as e:
        s.no(req, f"can't open mailbox {shown}: {e}")
        return
    s.box, s.box_name, s.state = box, shown, State.SELECTED
    box.announced = set(box.keywords)
    flags, permanent = flags_lines(box.announced)
    s.untagged(flags)
    s.untagged(f"{box.count()} EXISTS")
    if rev2.on(s):      # RFC 9051 6.3.2: LIST, neither RECENT nor UNSEEN
        s.untagged(rev2.select_list(folders.wire_text(raw), shown))
    else:
        s.untagged(f"{box.recent_reported} RECENT")     # (counted by open)
        unseen = box.first_unseen()
        if unseen is not None:
            s.untagged(f"OK [UNSEEN {unseen}] Message {unseen} is first unseen")
    s.untagged(permanent)
    s.untagged(f"OK [UIDNEXT {box.uidnext}] Predicted next UID")
    s.untagged(f"OK [UIDVALIDITY {box.uidvalidity}] UIDs valid")
    condstore.after_select(s, cond, resync)
    s.ok(req, f"{shown} completed", code="READ-ONLY" if readonly else "READ-WRITE")
    if box.modseqs.unproved():      # (the reply out first: the client need not wait)
        s.flush()
        box.modseqs.prove(box.ns, box.dir)


def select(s, req: Request) -> None:
    select_common(s, req, readonly=False)


def examine(s, req: Request) -> None:
    select_common(s, req, readonly=True)


def close(s, req: Request) -> None:
    box = s.box
    if not box.readonly:
        box.expunge(lambda m: "\\Deleted" in m.flags)
    close_box(s)
    s.ok(req, "mailbox closed, now in authenticated state")
