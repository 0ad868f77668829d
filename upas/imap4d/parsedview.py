"""One message's files as upasfs serves them, made in the session from
its `raw` by upasfs's own parser (upas/mail/mime.py).

A message's first TEXT or BODY search must find its texts -- the decoded
body of every leaf part, the header of every embedded message -- and
kept where they lie in `raw` (search.py's recipe).  Read from upasfs
that is 5-6 files a message found round by round (header, MIME probes,
bodies, raw bodies).  upasfs makes those files from the message's bytes
with mime.parse_message and Part.file; the same functions on the same
bytes make the same files, so the session reads `raw` once and parses
it itself (tests/test_imap_parsedview.py compares every file SEARCH
reads with upasfs's on the test and bench mailboxes).  `raw` is the
stored message after its From line: a From line of our own put before
it makes a buffer parse_message reads as upasfs reads the stored one
(the From line's content changes only `unixheader` and the dates, never
read from here).

ParsedView has the two methods of FsView that prefetch.Files uses
outside its speculative rounds, `read` and `parts`, for that one
message (whatever the message number asked).
"""
from __future__ import annotations

from upas import ns as nsmod
from upas.mail import mime

_FROM = b"From imap4d\n"
# files of a message or part SEARCH reads (the unparsed `raw` included)
FILES = frozenset({"raw", "rawheader", "rawbody", "mimeheader", "body", "type"})


class ParsedView:
    """The files of one message parsed from its raw bytes."""

    def __init__(self, raw: bytes):
        buf = _FROM + raw
        self.top = mime.parse_message(buf, 0, len(buf), mime.Ids())

    def _part(self, path: list[str]) -> mime.Part:
        p = self.top
        for k in path:
            if not k.isdigit() or not 1 <= int(k) <= len(p.parts):
                raise nsmod.Error("file does not exist")
            p = p.parts[int(k) - 1]
        return p

    def read(self, n: int, rel: str) -> bytes:
        *path, name = rel.split("/")
        if name not in FILES or (name == "raw" and path):
            raise nsmod.Error(f"{name}: not made here")
        p = self._part(path)
        if name == "body":
            p.open_body()               # as upasfs's open of `body` does
        return p.file(name)

    def parts(self, n: int, rel: str = "") -> list[int]:
        return list(range(1, len(self._part(rel.split("/") if rel else []).parts) + 1))
