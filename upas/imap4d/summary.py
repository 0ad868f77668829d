"""What SORT and THREAD compare of a message (RFC 5256, RFC 5957), made
once from its header and From line and kept by digest.

A Summary is computed from the content alone, so it is kept by digest
in the mailbox's sort index (sortindex.py: every message's, by column)
and in the message's in-memory cache: sorting 10,000 messages again
reads no message (Dovecot keeps the same in its index cache).
Strings are compared as RFC 5256 says, with i;ascii-casemap: the UTF-8
octets with ASCII letters in upper case (`collate`).
"""
from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Callable, NamedTuple

from upas.imap4d import dates, fetchcache, sortindex
from upas.imap4d import envelope as env
from upas.imap4d import fetch
from upas.imap4d import parser as p
from upas.imap4d.prefetch import Files, evaluate
from upas.imap4d.search import decoded
from upas.mail import header as H
from upas.mail import mime

if TYPE_CHECKING:
    from upas.imap4d.mailbox import Mailbox, Message

FILES = ["rawheader", "unixheader"]
_MEMO = ":summary"               # in Message.cache (no file name begins with ':')


class Summary(NamedTuple):     # a tuple: made from the sort index's columns at C speed
    arrival: int                 # internal date, UTC seconds
    date: int                    # sent date (Date:), else the internal date
    subject: str                 # the base subject (RFC 5256 2.1)
    reply: bool                  # its extraction took off a reply/forward marker
    from_: str                   # addr-mailbox of the first From address
    to: str
    cc: str
    display_from: str            # RFC 5957: display name, else mailbox@host
    display_to: str
    msgid: str                   # Message-ID, "" if none
    refs: tuple[str, ...]        # References, else In-Reply-To's first id


def collate(s: str) -> bytes:
    """i;ascii-casemap (RFC 4790): octets, a-z compared as A-Z."""
    return s.encode("utf-8", "surrogateescape").upper()


def collate_unicode(s: str) -> bytes:
    """i;unicode-casemap (RFC 5051), SORT=DISPLAY's: each character's
    titlecase, then NFKD; compared as UTF-8 octets."""
    return unicodedata.normalize("NFKD", "".join(c.title() for c in s)).encode(
        "utf-8", "surrogateescape")


# ------------------------------------------------------------ base subject

_SPACES = re.compile(r"[ \t\r\n]+")
_BLOB = r"\[[^\[\]]*\][ \t]*"
_REFWD = r"(?:re|fwd?)[ \t]*(?:" + _BLOB + r")?:"
_LEADER = re.compile(r"(?:" + _BLOB + r")*" + _REFWD + r"|[ \t]", re.I)
_BLOB_AT_START = re.compile(_BLOB)


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 2.1's base subject of an (already decoded) subject, and
    whether the extraction removed a reply or forward marker."""
    s = _SPACES.sub(" ", subject)
    reply = False
    while True:
        while True:                                      # (2) trailers
            if s.endswith(" "):
                s = s[:-1]
            elif s[-5:].lower() == "(fwd)":
                s, reply = s[:-5], True
            else:
                break
        while True:                                      # (3)-(5) leaders, blobs
            m = _LEADER.match(s)
            if m and m.end():
                reply = reply or not m.group().isspace()
                s = s[m.end():]
                continue
            m = _BLOB_AT_START.match(s)
            if m and s[m.end():].strip(" \t"):
                s = s[m.end():]
                continue
            break
        if s[:5].lower() == "[fwd:" and s.endswith("]"):   # (6)
            s, reply = s[5:-1], True
            continue
        return s, reply


# ------------------------------------------------------------ computing

_MSGID = re.compile(rb"<[^<>\s]+>")


def _first(hdr: bytes, name: str, site: str) -> env.Address | None:
    """The first address of a field as ENVELOPE has it: a group's start
    is one, its name the mailbox (`undisclosed-recipients:;`, as Dovecot)."""
    addrs = env.parse_addresses(env.field(hdr, name), site)
    return addrs[0] if addrs else None


def _mailbox(a: env.Address | None) -> str:
    return a.mailbox.decode("utf-8", "replace") if a and a.mailbox else ""


def _display(a: env.Address | None) -> str:
    if a is None:
        return ""
    if a.personal:
        name = decoded(a.personal).strip()
        if name:
            return name
    spec = b"@".join(x for x in (a.mailbox, a.host) if x)
    return spec.decode("utf-8", "replace")


def compute(rawheader: bytes, unixheader: bytes, site: str) -> Summary:
    arrival = dates.internal_time(unixheader)
    sent = dates.sent_time(rawheader)
    subject, reply = base_subject(decoded(env.field(rawheader, "subject") or b""))
    frm, to = _first(rawheader, "from", site), _first(rawheader, "to", site)
    mid = _MSGID.findall(env.field(rawheader, "message-id") or b"")
    refs = _MSGID.findall(env.field(rawheader, "references") or b"") or \
        _MSGID.findall(env.field(rawheader, "in-reply-to") or b"")[:1]
    return Summary(arrival, arrival if sent is None else sent, subject, reply,
                   _mailbox(frm), _mailbox(to), _mailbox(_first(rawheader, "cc", site)),
                   _display(frm), _display(to),
                   mid[0].decode("latin-1") if mid else "",
                   tuple(r.decode("latin-1") for r in refs))


# ------------------------------------------------------------ many messages

def kept_cache(box: "Mailbox", site: str, n: int) -> fetchcache.FetchCache | None:
    return fetchcache.for_box(box.ns, box.path, site) \
        if fetchcache.worth(box.ns, box.path, site, n) else None


def _row(values: tuple) -> Summary:
    """A Summary from the sort index's values (JSON has no tuples)."""
    return Summary._make(values[:10] + (tuple(values[10]),))


def _live(box: "Mailbox") -> list["Message"]:
    return [m for m in box.msgs if not m.expunged]


def summaries(box: "Mailbox", msgs: list["Message"], site: str) -> list[Summary]:
    """The Summary of each message: from the sort index when it lists
    exactly these messages (a SORT or THREAD of the whole mailbox), else
    remembered, found in the index by digest, or computed from the files
    of those that have none (read many at a time; the index is then
    written again with every message of the mailbox known)."""
    idx = sortindex.load(box.ns, box.path, Summary._fields)
    rows = idx.rows(_row) if idx is not None else None
    if rows is not None and idx.digests == sortindex.joined(msgs):
        return rows
    todo = []
    for m in msgs:
        if _MEMO not in m.cache:
            i = idx.position(m.digest) if rows is not None else None
            if i is None:
                todo.append(m)
            else:
                m.cache[_MEMO] = rows[i]
    if todo:
        from_lines(box, todo)
        files = Files(box.view)

        def one(m: "Message") -> Summary:
            return compute(files.read(m, "rawheader"), files.read(m, "unixheader"), site)
        for m, sm in evaluate(files, todo, one, lambda m: FILES):
            m.cache[_MEMO] = sm
        _rewrite(box, idx if rows is not None else None)
    return [m.cache[_MEMO] for m in msgs]


FROM_LINE = 512                 # bytes of rawunix read for its From line
_LINE_END = re.compile(rb"[\r\n\0]")
_FIXED = (None, b"???", b"Thu Jan 1 00:00:00 GMT 1970")   # mime._fix_unixdate's


def from_lines(box: "Mailbox", msgs: list["Message"]) -> None:
    """Each message's `unixheader` made from its From line (the start of
    `rawunix`, which upasfs serves without parsing the message) where
    upasfs makes it from that line alone (mime._parse_headers: a sender,
    and a date _fix_unixdate leaves as it is); the others are read as
    before.  upasfs would parse every message for its unixheader."""
    todo = [m for m in msgs if "unixheader" not in m.cache]
    if not todo:
        return
    got = box.view.read_many([(m.fsnum, "rawunix") for m in todo], FROM_LINE)
    for m, data in zip(todo, got):
        head = unix_header(data) if data else None
        if head is not None:
            m.cache["unixheader"] = head


def unix_header(start: bytes) -> bytes | None:
    """upasfs's unixheader of a message beginning with `start`, if its From
    line alone makes it (else None)."""
    if not start.startswith(b"From "):
        return None
    end = _LINE_END.search(start, 5)
    if end is None and len(start) >= FROM_LINE:
        return None                     # the line may go on
    sender, date = H.parse_unix_line(start[5:end.start() if end else len(start)])
    if sender is None or sender == b"???" or date in _FIXED:
        return None
    return b"From " + sender + b" " + (date or mime.EPOCH_DATE) + b"\n"


def _rewrite(box: "Mailbox", idx: sortindex.Index | None) -> None:
    """The sort index made again: every message of the mailbox whose
    Summary is known, in mailbox order."""
    known, rows = [], []
    for m in _live(box):
        sm = m.cache.get(_MEMO)
        if sm is None and idx is not None:
            i = idx.position(m.digest)
            sm = idx.rows(_row)[i] if i is not None else None
        if sm is not None:
            known.append(m)
            rows.append(sm)
    sortindex.write(box.ns, box.path, known, rows, Summary._fields)


def columns(box: "Mailbox", msgs: list["Message"], site: str, fields: tuple[str, ...]
            ) -> list[list]:
    """Those fields of each message's Summary, a list per field: the
    index's columns themselves when it lists exactly these messages
    (nothing made per message)."""
    idx = sortindex.load(box.ns, box.path, Summary._fields)
    if idx is not None and idx.digests == sortindex.joined(msgs):
        cols = [idx.column(f) for f in fields]
        if all(c is not None for c in cols):
            return cols
    sums = summaries(box, msgs, site)
    return [[sm[i] for sm in sums] for i in map(Summary._fields.index, fields)]


def kept_answer(box: "Mailbox", msgs: list["Message"], name: str,
                compute: Callable[[], str]) -> str:
    """compute(), an answer that depends on these messages' Summaries
    alone; kept in the sort index (Dovecot keeps its threads so) when
    they are exactly the messages it lists."""
    listed = sortindex.joined(msgs)
    idx = sortindex.load(box.ns, box.path, Summary._fields)
    got = idx.answer(name) if idx is not None and idx.digests == listed else None
    if got is None:
        got = compute()
        idx = sortindex.load(box.ns, box.path, Summary._fields)   # compute() may write it
        if idx is not None and idx.digests == listed:
            sortindex.add(box.ns, box.path, idx, name, got)
    return got


def sizes(box: "Mailbox", msgs: list["Message"], site: str,
          kept: fetchcache.FetchCache | None) -> list[int]:
    """RFC822.SIZE of each message, as FETCH gives (and keeps) it."""
    att = p.FetchAtt("RFC822.SIZE")
    todo = [m for m in msgs if "size" not in m.cache]
    files = Files(box.view)
    for m, item in evaluate(files, todo, lambda m: fetch.cached_item(files, m, att, site, kept),
                            fetch.first_files([att], kept)):
        m.cache["size"] = int(item.split()[1])
    return [m.cache["size"] for m in msgs]


def flush(box: "Mailbox", kept: fetchcache.FetchCache | None) -> None:
    """Write what was added to the cache (as FETCH does)."""
    if kept is not None and kept.pending:      # (the set costs O(mailbox))
        kept.flush({m.digest for m in box.msgs if not m.expunged})


def status_sizes(box: "Mailbox", site: str, items: set[str]) -> dict[str, int]:
    """STATUS's SIZE (RFC 8438: octets, the sum of the messages'
    RFC822.SIZE) and DELETED-STORAGE (RFC 9208: KiB, rounded up, of the
    \\Deleted ones), as asked; the sizes kept as FETCH keeps them."""
    if not items & {"SIZE", "DELETED-STORAGE"}:
        return {}
    live = [m for m in box.msgs if not m.expunged]
    kept = kept_cache(box, site, len(live))
    try:
        octets = sizes(box, live, site, kept)
    finally:
        flush(box, kept)
    deleted = sum(n for m, n in zip(live, octets) if "\\Deleted" in m.flags)
    return {"SIZE": sum(octets), "DELETED-STORAGE": (deleted + 1023) // 1024}
