"""QUOTA (RFC 9208) with the STORAGE resource (STATUS=SIZE and STATUS
DELETED-STORAGE: summary.status_sizes).

A user has one quota root, "", over all their mailboxes.  Its STORAGE
usage is the size of the user's mailbox files in units of 1024 octets
(what LIST can show: the `.imp` shadow files and caches beside them are
ours, not the user's mail); its limit is $IMAP4D_QUOTA (KiB), or, when
none is set, the largest number64 -- RFC 9208 has no way to report a
usage without a limit (docs/decisions.md).  Nothing is refused for
being over it: upas delivers regardless, as Plan 9 does.  SETQUOTA is
not offered (no QUOTASET)."""
from __future__ import annotations

from upas import config
from upas import ns as nsmod
from upas.imap4d import folders, listing, names
from upas.imap4d import parser as p
from upas.imap4d.request import Request

ROOT = ""
UNLIMITED = 2**63 - 1            # RFC 9208's number64 at its largest


def storage_used(s) -> int:
    """KiB (rounded up) of the user's mailbox files."""
    tree = listing.Tree(s.ns, s.user)
    octets = sum(d.length for _, d in tree.walk("", listing.MAX_DEPTH) if not d.isdir)
    return (octets + 1023) // 1024


def quota_line(s) -> str:
    limit = config.current().imap4d_quota
    return f'QUOTA "" (STORAGE {storage_used(s)} {UNLIMITED if limit is None else limit})'


def parse_root(r: p.Reader) -> bytes:
    return r.astring()


def cmd_getquota(s, req: Request) -> None:
    if req.args != ROOT.encode():
        return s.no(req, "no such quota root")
    s.untagged(quota_line(s))
    s.ok(req, "completed")


def cmd_getquotaroot(s, req: Request) -> None:
    try:
        name = names.parse(req.args)
        s.ns.stat(names.box_path(s.user, name.path))
    except (names.BadName, nsmod.Error):
        return s.no(req, "no such mailbox")
    s.untagged(f'QUOTAROOT {folders.wire_name(req.args)} ""')
    s.untagged(quota_line(s))
    s.ok(req, "completed")
