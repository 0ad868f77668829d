"""COPY and UID COPY with COPYUID (servers.md 3.10, decisions.md: INBOX
mapped everywhere).

Each copy is the source's `unixheader` + `raw` (its own From line kept,
ending in LF), appended to the target mbox under the target's mail lock by
the shared delivery code; the target's `.imp` gets an entry per copy with
a fresh uid and the source flags (\\Recent set: it is new there).
"""
from __future__ import annotations

import hashlib
import os

from upas import ns as nsmod
from upas.imap4d import imp, names
from upas.imap4d import parser as p
from upas.imap4d.mailbox import Mailbox
from upas.imap4d.table import EXPUNGES, SELECTED, Request, command


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


def append_entries(ns: nsmod.Namespace, path: str, entries: list[bytes]) -> None:
    """Append stored messages (each followed by the blank separator line)
    to the mbox at path; the caller holds the mail lock."""
    data = b"".join(e + b"\n" for e in entries)
    real = ns.local_path(path)
    if real is None:
        raise nsmod.Error("mailbox not local")
    fd = os.open(real, os.O_WRONLY | os.O_APPEND)
    try:
        size = os.fstat(fd).st_size
        try:
            os.write(fd, data)
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)          # leave the mailbox as it was
            raise
    finally:
        os.close(fd)


def add_imp_entries(ns: nsmod.Namespace, path: str, digests: list[str],
                    flags: list[set[str]], keywords: list[list[str]]) -> tuple[int, list[int]]:
    """Record the copies in the target's .imp (and keywords); returns the
    target's uidvalidity and the new uids.  The caller holds the lock."""
    imppath = path + ".imp"
    data = imp.read_file(ns, imppath)
    f = imp.parse_imp(data) if data else None
    if f is None:
        f = imp.ImpFile(imp.default_uidvalidity(ns, path), 1, [])
    uids = []
    for d, fl in zip(digests, flags):
        uids.append(f.uidnext)
        f.entries.append(imp.Entry(d, f.uidnext, (fl - {"\\Recent"}) | {"\\Recent"}))
        f.uidnext += 1
    # the target may be selected elsewhere: keep `r` so that its next
    # reader sees the copies as recent
    imp.write_atomic(ns, imppath, imp.format_imp(f, recent=True))
    if any(keywords):
        kwpath = path + ".kw.imp"
        old = imp.parse_keywords(imp.read_file(ns, kwpath) or b"")
        rows = [(d, u, k) for u, (d, k) in old.items()]
        rows += [(d, u, k) for d, u, k in zip(digests, uids, keywords) if k]
        imp.write_atomic(ns, kwpath, imp.format_keywords(rows))
    return f.uidvalidity, uids


def cover(s, path: str) -> None:
    """Make the target's .imp hold a uid for every message it has, so that
    the copies' uids come after them in mailbox order (as UIDs must).
    Opened as STATUS does: its recent messages stay recent."""
    if s.box is not None and s.box.path == path:
        s.box.check()
        return
    Mailbox(s.ns, path, keep_recent=True).open()


@command("COPY", states=SELECTED, parse=parse_copy, updates=EXPUNGES, uid=True)
def copy(s, req: Request) -> None:
    ranges, target = req.args
    box: Mailbox = s.box
    try:
        name = names.parse(target)
    except names.BadName:
        s.no(req, "bad mailbox")
        return
    path = names.box_path(s.user, name.path)
    try:
        st = s.ns.stat(path)
    except nsmod.Error:
        st = None
    if st is None or st.isdir:
        s.updates(req)
        s.line(f"{req.tag} NO [TRYCREATE] {req.name} mailbox does not exist")
        return
    box.check()
    msgs, ok = s.resolve(ranges, req.uid)
    if not ok or any(m.expunged for m in msgs):
        s.no(req)
        return
    try:
        entries = [mbox_entry(box.read(m, "unixheader"), box.read(m, "raw")) for m in msgs]
    except nsmod.Error as e:
        s.log(f"copy: {e}")
        s.no(req)
        return
    digests = [hashlib.sha1(e).hexdigest() for e in entries]
    try:
        cover(s, path)
        with s.ns.lock(os.path.dirname(path)):
            append_entries(s.ns, path, entries)
            validity, uids = add_imp_entries(s.ns, path, digests, [set(m.flags) for m in msgs],
                                             [list(m.keywords) for m in msgs])
    except Exception as e:
        s.log(f"copy: {e}")
        s.no(req)
        return
    code = None
    if msgs:
        code = f"COPYUID {validity} {','.join(str(m.uid) for m in msgs)} {','.join(map(str, uids))}"
    s.ok(req, code=code)
