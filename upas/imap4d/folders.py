"""Mailbox management: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
NAMESPACE and STATUS (docs/spec/servers.md §3.10), on the files under /mail/box/USER.

As Bell Labs' imap4d, these edit the mail tree directly (through the
namespace), under the mail lock.  Where the original had bugs we follow
docs/decisions.md: DELETE answers NO when nothing was deleted; a name is refused
if any component is `..` (names.py).  RENAME of INBOX moves its messages to
the new mailbox and leaves INBOX empty, as Plan 9 does, but crash-safely:
the copy is complete and synced before the inbox is emptied.  STATUS opens
the box as Plan 9's `status` view and, unlike Plan 9, never expunges.
"""
from __future__ import annotations

import posixpath

from upas import ns as nsmod
from upas.mail import digestcache, mboxindex, safewrite

from . import fetchcache, modseq, modtail, names, savedate, selectmark, sortindex, subscriptions, summary
from .envelope import quote
from . import parser as p

DIR_PERM = 0o700           # mail is its owner's only (docs/running.md)
FILE_PERM = 0o600
LOCK_WAIT = 10.0            # seconds DELETE waits for a folder's lock


def parse_one(r: p.Reader) -> bytes:
    return r.astring()


def parse_two(r: p.Reader) -> tuple[bytes, bytes]:
    a = r.astring()
    r.sp()
    return a, r.astring()


def wire_text(raw: bytes) -> str:
    """The client's argument as it may be echoed (printable ASCII only;
    UTF-8 too under IMAP4rev2)."""
    return raw.decode("utf-8" if names.UTF8.get() else "ascii", "replace")


def _path(s, path: str) -> str:
    return names.box_path(s.user, path)


def _imp_files(s, path: str, cache: bool = True) -> list[str]:
    """The shadow file `<path>.imp`, the keywords, save dates and MODSEQs
    beside it (imp.py, savedate.py, modseq.py) and, if `cache`, the servers'
    digest caches (mail/digestcache.py), the cache's old name
    (fetchcache.py), upasfs's index (mail/mboxindex.py), the listing
    SELECT keeps (selectmark.py), the MODSEQ record's proof (modtail.py)
    and SORT's index (sortindex.py), which are rebuilt on demand."""
    parent, base = posixpath.split(path)
    try:
        entries = s.ns.readdir(_path(s, parent))
    except nsmod.Error:
        return []
    return [posixpath.join(parent, d.name) for d in entries
            if d.name in (base + ".imp", base + ".kw.imp", base + savedate.SUFFIX,
                          base + modseq.SUFFIX)
            or (cache and d.name in _caches(base))]


def _caches(base: str) -> set[str]:
    """The names of the files rebuilt on demand that go with mailbox base."""
    return {digestcache.path_for(base, server) for server in digestcache.SERVERS} \
        | {base + fetchcache.OLD_SUFFIX, base + mboxindex.SUFFIX, selectmark.path_for(base),
           sortindex.path_for(base), modtail.path_for(base)}


def selected_path(s) -> str | None:
    """The path (relative to the mail dir) of the selected mailbox, if any."""
    full = s.box.path if s.box is not None else None
    prefix = _path(s, "") + "/"
    return full[len(prefix):] if full and full.startswith(prefix) else None


def make_parents(s, path: str) -> None:
    """Create the missing directories above `path` (mode 0775)."""
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = _path(s, "/".join(parts[:i]))
        try:
            s.ns.create(d, DIR_PERM, dir=True)
        except nsmod.Error:
            st = s.ns.stat(d)  # raises if it neither exists nor could be made
            if not st.isdir:
                raise nsmod.Error("not a directory")


# ---------------------------------------------------------------- CREATE

def cmd_create(s, req) -> None:
    try:
        name = names.parse(req.args)
    except names.BadName:
        return s.no(req, "bad mailbox")
    if name.inbox:
        return s.no(req, "cannot remotely create INBOX")
    full = _path(s, name.path)
    if s.ns.exists(full):
        return s.no(req, "mailbox already exists")
    try:
        make_parents(s, name.path)
        s.ns.create(full, DIR_PERM if name.folder else FILE_PERM, dir=name.folder)
    except nsmod.Error as e:
        if str(e) == "file already exists":  # a concurrent CREATE won
            return s.no(req, "mailbox already exists")
        return s.no(req, f"cannot create mailbox {wire_text(req.args)}")
    s.tagged(req, f"OK {wire_text(req.args)} {req.name} completed")


# ---------------------------------------------------------------- DELETE

LOCK_PREFIX = "L."          # L.mbox: the mail lock (names.py reserves `L.*`)


def _remove(s, path: str) -> None:
    """Remove a mailbox, or a folder whose only content is lock files: a
    lock file is what selecting or appending to a mailbox that was in it
    leaves, not content.  They go under the folder's own lock, so nobody
    is between taking it and using the folder."""
    full = _path(s, path)
    st = s.ns.stat(full)
    if st.isdir:
        entries = s.ns.readdir(full)
        if entries and all(not d.isdir and d.name.startswith(LOCK_PREFIX) for d in entries):
            with s.ns.lock(full, LOCK_WAIT):
                for d in entries:
                    s.ns.remove(f"{full}/{d.name}")
                s.ns.remove(full)
            return
    s.ns.remove(full)

def cmd_delete(s, req) -> None:
    wire = wire_text(req.args)
    try:
        name = names.parse(req.args)
    except names.BadName:
        return s.no(req, "bad mailbox")
    if name.inbox:
        return s.no(req, f"cannot delete mailbox {wire}")
    if selected_path(s) == name.path:
        return s.no(req, f"cannot delete the selected mailbox {wire}")
    with s.ns.lock(_path(s, "")):
        try:
            # the mailbox first: if it cannot go (a folder with children),
            # its UIDs and flags are kept
            _remove(s, name.path)
        except nsmod.Error:
            return s.no(req, f"cannot delete mailbox {wire}")
        for f in _imp_files(s, name.path):
            try:
                s.ns.remove(_path(s, f))
            except nsmod.Error:
                pass
    s.tagged(req, f"OK {wire} {req.name} completed")


# ---------------------------------------------------------------- RENAME

def _rename_inbox(s, to: str) -> None:
    """Plan 9: INBOX's messages (and .imp) move to `to`; INBOX stays, empty."""
    ns = s.ns
    make_parents(s, to)
    safewrite.copy(ns, _path(s, names.INBOX_FILE), _path(s, to), FILE_PERM)
    for f in _imp_files(s, names.INBOX_FILE, cache=False):
        safewrite.copy(ns, _path(s, f), _path(s, to + f[len(names.INBOX_FILE):]))
    safewrite.replace(ns, _path(s, names.INBOX_FILE), b"", FILE_PERM)
    for f in _imp_files(s, names.INBOX_FILE):     # the cache is rebuilt on demand
        ns.remove(_path(s, f))


def _rename_box(s, frm: str, to: str) -> None:
    make_parents(s, to)
    imps = _imp_files(s, frm)
    s.ns.rename(_path(s, frm), _path(s, to))
    for f in imps:
        s.ns.rename(_path(s, f), _path(s, to + f[len(frm):]))


def cmd_rename(s, req) -> None:
    try:
        frm, to = names.parse(req.args[0]), names.parse(req.args[1])
    except names.BadName:
        return s.no(req, "bad mailbox destination name")
    if to.inbox:
        return s.no(req, "bad mailbox destination name")
    if s.ns.exists(_path(s, to.path)):
        return s.no(req, "mailbox already exists")
    if (to.path + "/").startswith(frm.path + "/"):
        return s.no(req, "failed")  # into itself
    if not s.ns.exists(_path(s, frm.path)):
        return s.no(req, "failed")
    if selected_path(s) == frm.path and not frm.inbox:
        return s.no(req, "cannot rename the selected mailbox")
    with s.ns.lock(_path(s, "")):
        try:
            if s.ns.exists(_path(s, to.path)):  # created meanwhile
                return s.no(req, "mailbox already exists")
            if frm.inbox:
                _rename_inbox(s, to.path)
            else:
                _rename_box(s, frm.path, to.path)
        except nsmod.Error:
            return s.no(req, "failed")
    if not frm.inbox:
        subscriptions.rename(s.ns, s.user, frm.path, to.path)
    s.ok(req, "completed")


# ---------------------------------------------------------------- subscriptions

def cmd_subscribe(s, req) -> None:
    try:
        name = names.parse(req.args)
    except names.BadName:
        return s.no(req, "bad mailbox")
    if not s.ns.exists(_path(s, name.path)):
        return s.no(req, "bad mailbox")
    subscriptions.add(s.ns, s.user, subscriptions.stored_name(name))
    s.ok(req, "completed")


def cmd_unsubscribe(s, req) -> None:
    try:
        name = names.parse(req.args)
        subscriptions.remove(s.ns, s.user, subscriptions.stored_name(name))
    except (names.BadName, nsmod.Error):
        return s.no(req, "can't unsubscribe")
    s.ok(req, "completed")


# ---------------------------------------------------------------- NAMESPACE

def cmd_namespace(s, req) -> None:
    s.untagged('NAMESPACE (("" "/")) NIL NIL')
    s.ok(req, "completed")


# ---------------------------------------------------------------- STATUS

# Plan 9's, then STATUS=SIZE's (RFC 8438), IMAP4rev2's DELETED (RFC 9051
# 6.3.11), QUOTA's (RFC 9208, after DELETED as in its 4.1.4 example) and
# CONDSTORE's (RFC 7162 3.1.6)
STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE",
                "DELETED", "DELETED-STORAGE", "HIGHESTMODSEQ")


def parse_status(r: p.Reader) -> tuple[bytes, set[str]]:
    name = r.astring()
    r.sp()

    def item() -> str:
        try:
            w = r.atom().upper()
        except p.ParseError:
            raise p.ParseError("illegal status item") from None
        if w not in STATUS_ITEMS:
            raise p.ParseError("illegal status item")
        return w
    return name, set(r.paren_list(item, empty_ok=False))


def _status_box(s, path: str):
    """The selected box when it is the one asked about (docs/decisions.md), else
    the box opened as Plan 9's `status` view: it writes `r` in the .imp, so
    recent mail stays recent, and it never expunges (docs/decisions.md)."""
    from .mailbox import Mailbox
    if selected_path(s) == path:
        s.box.check()
        return s.box
    box = Mailbox(s.ns, _path(s, path), readonly=True, keep_recent=True)
    box.open()
    return box


def status_line(s, path: str, items: set[str], shown: str) -> str:
    """`STATUS <shown> (ITEM n ...)`, items in Plan 9's fixed order; raises
    MailboxError or ns.Error when the box cannot be opened."""
    box = _status_box(s, path)
    vals = status_values(box) | summary.status_sizes(box, s.opts.site, items)
    body = " ".join(f"{k} {vals[k]}" for k in STATUS_ITEMS if k in items)
    return f"STATUS {shown} ({body})"


def status_values(box) -> dict[str, int]:
    live = [m for m in box.msgs if not m.expunged]
    return {"MESSAGES": len(live), "RECENT": box.recent(), "UIDNEXT": box.uidnext,
            "UIDVALIDITY": box.uidvalidity,
            "UNSEEN": sum(1 for m in live if "\\Seen" not in m.flags),
            "DELETED": sum(1 for m in live if "\\Deleted" in m.flags),
            "HIGHESTMODSEQ": box.modseqs.highest}


def wire_name(raw: bytes) -> str:
    """A mailbox name as echoed in an untagged reply: the client's string,
    bare when it is an atom (as Plan 9 prints it), else quoted."""
    text = wire_text(raw)
    atom_ok = text and all(0x21 <= ord(c) <= 0x7E and c not in '(){%*"\\' for c in text)
    return text if atom_ok else quote(text)


def cmd_status(s, req) -> None:
    raw, items = req.args
    from .mailbox import MailboxError
    try:
        name = names.parse(raw)
    except names.BadName:
        return s.no(req, "bad mailbox")
    try:
        line = status_line(s, name.path, items, wire_name(raw))
    except (MailboxError, nsmod.Error) as e:
        return s.no(req, f"can't open mailbox {wire_text(raw)}: {e}", code="TRYCREATE")
    s.untagged(line)
    s.ok(req, "completed")
