"""SEARCH and UID SEARCH (docs/spec/servers.md §3.12, docs/decisions.md: every key works on
every message; BODY and TEXT match the decoded text upasfs serves in
`body`; header keys match the raw and the RFC 2047-decoded value)."""
from __future__ import annotations

import calendar
import functools
import re
import time
from typing import Callable, NamedTuple

from upas.imap4d import condstore, dates, esearch, fetchcache, msgview, rev2, savedate
from upas.imap4d import envelope as env
from upas.imap4d import fetch
from upas.imap4d import parser as p
from upas.imap4d.mailbox import Mailbox, Message
from upas.imap4d.parsedview import ParsedView
from upas.imap4d.prefetch import Files, evaluate
from upas.imap4d.request import Request
from upas.mail import header as H

CHARSETS = ("US-ASCII", "UTF-8")
TEXTS = "TEXTS"      # digest cache key: where a message's header and texts lie


def decoded(v: bytes) -> str:
    """A header value with its encoded words decoded (best effort)."""
    text = v.decode("utf-8", "replace")
    if b"=?" not in v:
        return text                      # nothing encoded: spare the parse
    import email.header                  # not at start-up: seldom needed
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except Exception:
        return text


def contains(hay: str, needle: str) -> bool:
    return needle.casefold() in hay.casefold()


# The characters whose case folding has ASCII in it (ß, İ, ŉ, ſ, ǰ, ẖ-ẞ,
# K, ﬀ-ﬆ: tests/test_imap_search_fast.py checks the list is Python's),
# as UTF-8, with their folding as UTF-8.
FOLDS_TO_ASCII = {c.encode(): c.casefold().encode() for c in (
    "\u00df\u0130\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99\u1e9a\u1e9e\u212a"
    "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06")}


_LETTERS = bytes(range(0x61, 0x7B))
_ALNUM = bytes(0x61 if c < 0x80 and chr(c).isalnum() else 0x20 for c in range(256))


def _fold(m: re.Match) -> bytes:
    return FOLDS_TO_ASCII[m.group()]


def longest_word(text: bytes) -> int:
    """At least the longest run of ASCII letters and digits in text with
    every FOLDS_TO_ASCII character folded (each counted as its bytes: it
    folds to no more ASCII letters than that): a needle of letters and
    digits longer than this is in no case folding of text (Decoded.run).
    Found without a Python object per run (a binary attachment has one
    every few bytes): the runs marked by one translate, their longest
    by substring searches, doubling then halving."""
    marks: bytes | bytearray = text.translate(_ALNUM)
    if not text.isascii():
        spans = [m.span() for f in _folds_for(_LETTERS)[0] for m in f.finditer(text)]
        if spans:
            marks = bytearray(marks)
            for a, b in spans:
                marks[a:b] = b"a" * (b - a)
    if b"a" not in marks:
        return 0
    lo, hi = 1, 2                   # a run of lo is there; of hi, not known
    while b"a" * hi in marks:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if b"a" * mid in marks else (lo, mid)
    return lo


@functools.lru_cache(maxsize=32)
def _folds_for(want: bytes) -> tuple[tuple[re.Pattern, ...], re.Pattern | None]:
    """For an ASCII needle (lowered): finders of the FOLDS_TO_ASCII
    sequences whose folding has a character of the needle -- only those
    can take part in a match (another's folding adds no byte the needle
    has; unfolded, its bytes are not ASCII) -- one pattern per leading
    bytes, each found at C speed from its literal prefix (an alternation
    of all is a regex step per byte: 3 ns a byte, on 36 MB of decoded
    attachments); and the pattern that folds them."""
    seqs = [c for c, f in FOLDS_TO_ASCII.items() if any(b < 0x80 and b in want for b in f)]
    if not seqs:
        return (), None
    leads: dict[bytes, list[bytes]] = {}
    for c in seqs:
        leads.setdefault(c[:-1], []).append(c[-1:])
    finders = tuple(re.compile(re.escape(lead) + b"[" + b"".join(map(re.escape, lasts)) + b"]")
                    for lead, lasts in leads.items())
    return finders, re.compile(b"|".join(map(re.escape, seqs)))


def contains_bytes(hay: bytes, needle: str) -> bool:
    """contains(hay decoded as UTF-8, needle), without decoding when the
    needle is ASCII.  casefold() maps ASCII as lower() does, FOLDS_TO_ASCII
    to their foldings and every other character to non-ASCII ones (case
    folding is per character); the decoding keeps each ASCII byte as it
    is (an invalid byte becomes U+FFFD and never eats an ASCII one) and
    decodes each of FOLDS_TO_ASCII's sequences found in the bytes as that
    character (its first byte is no continuation byte).  So an ASCII
    needle matches the case-folded text where it matches the bytes with
    those sequences replaced by their foldings and ASCII letters lowered
    (tests/test_imap_search_fast.py checks it against the decoding); and
    where it matches the bytes so lowered alone, it matches the text.
    Only the sequences whose folding shares a character with the needle
    are looked for and folded (_folds_for)."""
    if not needle.isascii():
        return contains(hay.decode("utf-8", "replace"), needle)
    want = needle.lower().encode()
    if want in hay.lower():
        return True
    if hay.isascii():
        return False
    finders, folding = _folds_for(want)
    if folding is None or not any(f.search(hay) for f in finders):
        return False
    return want in folding.sub(_fold, hay).lower()


def _rel(node: fetch.Node, name: str) -> str:
    return f"{node.rel}/{name}" if node.rel else name


class Decoded(NamedTuple):
    """A text that is a span of `raw` decoded as upasfs decodes a part's
    body at open (mime.Part.decoded_body, with the same functions):
    its transfer encoding undone, a text leaf's charset converted to
    UTF-8, a text/* part's NULs dropped.  With `run`, its longest_word:
    a search for a longer word of letters and digits (an ASCII needle
    matches runs of those bytes, folded or not: contains_bytes) leaves
    it undecoded -- most of a binary attachment's runs are short."""
    start: int
    end: int
    encoding: bytes             # b"b" base64, b"q" quoted-printable, b"i" as is
    charset: bytes              # converted from (convert_text), b"" if not
    nul: bool                   # NULs dropped
    run: int = -1               # longest_word of the text; -1: not known

    def text(self, raw: bytes) -> bytes:
        out = _DECODERS[self.encoding](raw[self.start:self.end])
        if self.charset:
            out = H.convert_text(self.charset, out)
        return out.replace(b"\0", b"") if self.nul else out

    def entry(self) -> bytes:
        e = b"d%d-%d:%s:%s:%d" % (self.start, self.end, self.encoding, self.charset or b"-",
                                  self.nul)
        return e + b":%d" % self.run if self.run >= 0 else e

    def cannot_hold(self, needle: str) -> bool:
        """Whether the text is too short of words to hold needle."""
        return 0 <= self.run < len(needle) and needle.isascii() and needle.isalnum()


_DECODERS: dict[bytes, Callable[[bytes], bytes]] = {
    b"b": H.dec64, b"q": H.decquoted, b"i": bytes}
_CHARSET = re.compile(rb"[A-Za-z0-9._+-]{1,40}\Z")     # no ":" (the entry's separator)
Source = tuple[int, int] | str | Decoded


@functools.lru_cache(maxsize=1024)
def parse_recipe(v: bytes | None) -> tuple[Source, ...] | None:
    """The sources of a message's header and texts, as the digest cache
    keeps them: a span (start, end) of `raw`, a span decoded (Decoded),
    or a file name.  Kept for the recipes last asked for: a search asks
    for a message's at least twice (what to read, then the match), and
    again each time prefetch evaluates it."""
    if v is None:
        return None
    out: list[Source] = []
    try:
        for e in v.split(b" "):
            if e[:1] == b"r":
                s, _, t = e[1:].partition(b"-")
                out.append((int(s), int(t)))
            elif e[:1] == b"d":
                span, enc, cs, nul, *run = e[1:].split(b":")
                s, _, t = span.partition(b"-")
                if enc not in _DECODERS or len(run) > 1:
                    return None
                out.append(Decoded(int(s), int(t), enc, b"" if cs == b"-" else cs, nul == b"1",
                                   int(run[0]) if run else -1))
            else:
                out.append(e[1:].decode())
    except ValueError:                  # not ours: found again from the files
        return None
    return tuple(out)


def source_text(raw: bytes, x: tuple[int, int] | Decoded) -> bytes:
    """The text a span or decoded span of raw stands for."""
    return x.text(raw) if isinstance(x, Decoded) else raw[x[0]:x[1]]


def decoding(raw: bytes, rawbody: bytes, mimeheader: bytes, body: bytes) -> Decoded | None:
    """How a part's `body` is its `rawbody` (found in raw) decoded, if it
    is one of the ways upasfs decodes a body: tried against the body
    itself, so a Decoded kept gives exactly these bytes (the digest fixes
    raw, and so every span of it)."""
    at = raw.find(rawbody) if rawbody else -1
    if at < 0:
        return None
    cte = (env.field(mimeheader, "content-transfer-encoding") or b"").strip().lower()
    encs = [{b"base64": b"b", b"quoted-printable": b"q"}.get(cte, b"i")] + [b"i"]
    cs = env.content_type(mimeheader).params
    charsets = [b""] + [c for c in ([v.encode("latin-1", "replace") for k, v in cs
                                     if k.lower() == "charset"] + [b"iso-8859-1"])
                        if _CHARSET.match(c)]
    for enc in dict.fromkeys(encs):
        for charset in charsets:
            for nul in (False, True):
                d = Decoded(at, at + len(rawbody), enc, charset, nul)
                if d.text(raw) == body:
                    return d
    return None


def make_recipe(raw: bytes, rels: list[str], texts: list[bytes],
                decoded: list[Decoded | None] | None = None) -> bytes:
    """Each text as the span of `raw` holding the very same bytes, or as a
    span decoded (decoded[i], checked equal to the text), or as its file
    when raw holds it neither way -- or every one as its file when the
    spans would cover less than half of raw (reading them is cheaper)."""
    spans: list[tuple[int, int] | Decoded | None] = []
    for i, t in enumerate(texts):
        at = raw.find(t)
        d = decoded[i] if decoded else None
        spans.append((at, at + len(t)) if at >= 0 else d._replace(run=longest_word(t)) if d
                     else None)
    covered = sum(x[1] - x[0] for x in spans if x)
    if not raw or 2 * covered < len(raw):
        spans = [None] * len(texts)
    return b" ".join(x.entry() if isinstance(x, Decoded) else b"r%d-%d" % x if x
                     else b"f" + r.encode() for x, r in zip(spans, rels))


def _coding_files(rel: str) -> list[str]:
    """The raw body and MIME header of the part whose `body` is rel."""
    base = rel[:-len("body")]
    return [base + "rawbody", base + "mimeheader" if base else "rawheader"]


class Matcher:
    """Evaluates a key tree against one message, reading files lazily.
    With the mailbox's digest cache, the texts TEXT and BODY search are
    read from where the cache says they lie (kept when first found, from
    the bytes of `raw` checked equal to them)."""

    def __init__(self, files: Files, m: Message, seq: int, maxseq: int, top: int,
                 cache: fetchcache.FetchCache | None = None, box: Mailbox | None = None,
                 saves: dict[str, int] | None = None):
        self.files, self.m, self.seq, self.maxseq, self.top = files, m, seq, maxseq, top
        self.box = box          # its MODSEQs (MODSEQ's key)
        self.saves = saves or {}    # its save dates, read once a command (SAVEDATE's keys)
        self.node = fetch.Node(files, m)
        self.cache = cache
        self.recipe = parse_recipe(cache.get(m.digest, TEXTS)) if cache else None

    def _source(self, x: Source) -> bytes:
        if isinstance(x, str):
            return self.node.file(x)
        return source_text(self.node.file("raw"), x)

    def header(self) -> bytes:
        """rawheader, or its span of raw when raw is read for the texts."""
        r = self.recipe
        if r and isinstance(r[0], tuple) and "rawheader" not in self.m.cache \
                and self.files.has(self.m, "raw"):
            return self._source(r[0])
        return self.node.file("rawheader")

    def texts(self, needle: str = "") -> list[bytes]:
        """The decoded body of every leaf part (the message body if single),
        and the header of every message part; with a needle, those the
        recipe knows cannot hold it may be left out."""
        files = self.files
        if self.recipe:
            return files.gather(self._source, [x for x in self.recipe[1:] if not (
                isinstance(x, Decoded) and x.cannot_hold(needle))], b"")
        if self.cache is None:
            return files.gather(self.node.file, self.text_files(), b"")
        # first time: the texts from raw parsed here as upasfs parses it
        # (parsedview.py: its files are upasfs's), and where they lie in
        # raw, verbatim or decoded, kept (one file a message read)
        raw, head = self.node.file("raw"), self.node.file("rawheader")
        if not files.live():
            return []                   # evaluated again once raw is read
        try:
            rels, texts, decoded = self._parsed_texts(raw)
        except Exception:               # noqa: BLE001 -- upasfs's files then
            return files.gather(self.node.file, self.text_files(), b"")
        cache, digest = self.cache, self.m.digest
        files.keep(lambda: cache.put(digest, TEXTS, make_recipe(
            raw, ["rawheader"] + rels, [head] + texts, decoded)))
        return texts

    def _parsed_texts(self, raw: bytes) -> tuple[list[str], list[bytes], list[Decoded | None]]:
        """The text files, their texts and how those not verbatim in raw
        decode from it, from raw parsed in the session."""
        local = Files(ParsedView(raw))
        rels = Matcher(local, self.m, self.seq, self.maxseq, self.top).text_files()
        texts = [local.view.read(0, r) for r in rels]
        decoded: list[Decoded | None] = [None]      # the header's
        for r, t in zip(rels, texts):
            coded = r.endswith("body") and raw.find(t) < 0
            decoded.append(decoding(raw, *[local.view.read(0, f) for f in _coding_files(r)], t)
                           if coded else None)
        return rels, texts, decoded

    def text_files(self, node: fetch.Node | None = None) -> list[str]:
        """The files texts() reads: every leaf's body (the message body if
        single), every embedded message's header."""
        node = node or self.node
        if node.ctype().type not in ("multipart", "message"):
            return [_rel(node, "body")]      # no parts: spare the directory read
        kids = self.files.parts(self.m, node.rel)
        if not kids:
            return [_rel(node, "body")]
        return sum(self.files.gather(self._part_files, [
            fetch.Node(self.files, self.m, _rel(node, str(k))) for k in kids], []), [])

    def _part_files(self, child: fetch.Node) -> list[str]:
        if not child.is_rfc822() or self.files.parts(self.m, child.rel) == []:
            return self.text_files(child)
        emb = child.embedded()
        return [_rel(emb, "rawheader")] + self.text_files(emb)

    def field_values(self, name: str) -> list[str]:
        vals = [v for n, v, _ in env.fields(self.header()) if n == name]
        return [v.decode("utf-8", "replace") + "\0" + decoded(v) for v in vals]

    def match(self, k: p.Key) -> bool:
        return KEYS[k.op](self, k)

    # loops, not all()/any() over generators: a frame less per nesting level
    def k_and(self, k: p.Key) -> bool:
        for x in k.kids:
            if not self.match(x):
                return False
        return True

    def k_or(self, k: p.Key) -> bool:       # an OR chain is one OR (parser)
        for x in k.kids:
            if self.match(x):
                return True
        return False

    def k_not(self, k: p.Key) -> bool:
        return not self.match(k.kids[0])

    def k_all(self, k: p.Key) -> bool:
        return True

    def k_modseq(self, k: p.Key) -> bool:         # RFC 7162 3.1.5
        return self.box.modseqs.of(self.m.uid) >= k.args[0]

    def k_flag(self, k: p.Key) -> bool:
        flag, want = k.args
        return (flag in self.m.flags) == want

    def k_keyword(self, k: p.Key) -> bool:
        kw, want = k.args
        return any(x.lower() == kw.lower() for x in self.m.keywords) == want

    def k_addr(self, k: p.Key) -> bool:
        """The field's text, raw and decoded, or one of its addresses as
        parsed (comments out: `<u (c)@ (c) x.org>` is u@x.org)."""
        name, needle = k.args
        if any(contains(v, needle) for v in self.field_values(name)):
            return True
        return any(contains(a.text(), needle)
                   for n, v, _ in env.fields(self.header()) if n == name
                   for a in env.parse_addresses(v, ""))

    def k_subject(self, k: p.Key) -> bool:
        return any(contains(v, k.args[0]) for v in self.field_values("subject"))

    def k_header(self, k: p.Key) -> bool:
        name, s = k.args
        vals = self.field_values(name.lower())
        return bool(vals) and (s == "" or any(contains(v, s) for v in vals))

    def k_body(self, k: p.Key) -> bool:
        return any(contains_bytes(t, k.args[0]) for t in self.texts(k.args[0]))

    def k_text(self, k: p.Key) -> bool:
        raw = self.header()
        return (contains_bytes(raw, k.args[0])
                or (b"=?" in raw and contains(decoded(raw), k.args[0]))
                or self.k_body(k))

    def k_size(self, k: p.Key) -> bool:
        op, n = k.args
        v = self.cache.get(self.m.digest, "RFC822.SIZE") if self.cache else None
        size = int(v.split()[1]) if v else fetch.rfc822_size(self.files, self.m)
        return size > n if op == ">" else size < n

    def _day_cmp(self, t: int | None, k: p.Key) -> bool:
        if t is None:
            return False
        op, (y, mo, d) = k.args
        day = calendar.timegm((y, mo, d, 0, 0, 0))
        t = t - t % 86400
        return {"<": t < day, "=": t == day, ">=": t >= day}[op]

    def k_date(self, k: p.Key) -> bool:
        return self._day_cmp(self._local_day(fetch.internaldate(self.node.file("unixheader"))), k)

    def k_savedate(self, k: p.Key) -> bool:
        return self._day_cmp(self._local_day(fetch.saved(self.saves, self.files, self.m)), k)

    def k_sentdate(self, k: p.Key) -> bool:
        v = env.field(self.header(), "date")
        t = None
        if v:
            import email.utils
            try:
                tt = email.utils.parsedate_tz(v.decode("ascii", "replace"))
                if tt:
                    t = calendar.timegm(tt[:6])     # the day as written
            except Exception:
                t = None
        if t is None:
            return self.k_date(k)
        return self._day_cmp(t, k)

    @staticmethod
    def _local_day(internal: str) -> int | None:
        """The day of an internal date as written (the zone not applied)."""
        try:
            return calendar.timegm(time.strptime(internal[:11], "%d-%b-%Y"))
        except ValueError:
            return None

    def k_seq(self, k: p.Key) -> bool:
        return any(lo <= self.seq <= (self.maxseq if hi == p.STAR else hi)
                   or (lo == p.STAR and self.seq == self.maxseq)
                   for lo, hi in k.args[0])

    def k_within(self, k: p.Key) -> bool:
        """OLDER and YOUNGER (RFC 5032): the internal date's age in seconds."""
        older, n = k.args
        age = time.time() - dates.internal_time(self.node.file("unixheader"))
        return age > n if older else age <= n

    def k_uidin(self, k: p.Key) -> bool:
        return self.m.uid in k.args[0]

    def k_uid(self, k: p.Key) -> bool:
        top = self.top
        for lo, hi in k.args[0]:
            lo = top if lo == p.STAR else lo
            hi = top if hi == p.STAR else hi
            if min(lo, hi) <= self.m.uid <= max(lo, hi):
                return True
        return False


# how each search key (parser.Key.op) tests a message
KEYS: dict[str, Callable[[Matcher, p.Key], bool]] = {
    "AND": Matcher.k_and, "OR": Matcher.k_or, "NOT": Matcher.k_not, "ALL": Matcher.k_all,
    "FLAG": Matcher.k_flag, "KEYWORD": Matcher.k_keyword, "ADDR": Matcher.k_addr,
    "SUBJECT": Matcher.k_subject, "HEADER": Matcher.k_header, "BODY": Matcher.k_body,
    "TEXT": Matcher.k_text, "SIZE": Matcher.k_size, "DATE": Matcher.k_date,
    "SENTDATE": Matcher.k_sentdate, "SEQ": Matcher.k_seq, "UID": Matcher.k_uid,
    "WITHIN": Matcher.k_within, "UIDIN": Matcher.k_uidin, "SAVEDATE": Matcher.k_savedate,
    "MODSEQ": Matcher.k_modseq,
}

# the files of the message itself that a key certainly reads
_KEY_FILES = {"ADDR": ("rawheader",), "SUBJECT": ("rawheader",), "HEADER": ("rawheader",),
              "SENTDATE": ("rawheader",), "TEXT": ("rawheader",),
              "BODY": ("rawheader",), "SIZE": ("rawheader", "rawbody"),
              "DATE": ("unixheader",), "WITHIN": ("unixheader",), "SAVEDATE": ("unixheader",)}


def first_files(k: p.Key) -> list[str]:
    """What evaluating k surely reads of a message (the first key of an
    AND or OR is always evaluated)."""
    if k.op in ("AND", "OR", "NOT"):
        return first_files(k.kids[0]) if k.kids else []
    return list(_KEY_FILES.get(k.op, ()))


def _first_key(k: p.Key) -> p.Key:
    """The key evaluated first (that of an AND, OR or NOT always is)."""
    while k.op in ("AND", "OR", "NOT") and k.kids:
        k = k.kids[0]
    return k


def _reads_texts(k: p.Key) -> bool:
    return k.op in ("TEXT", "BODY") or any(_reads_texts(x) for x in k.kids or ())


def first_files_cached(k: p.Key, cache: fetchcache.FetchCache | None):
    """m -> what evaluating k on m first reads: with the digest cache, for
    a key searching texts, where the cache says they lie."""
    files = first_files(k)
    if cache is None or not _reads_texts(k):
        return lambda m: files
    # the first TEXT or BODY search of a message reads raw with its texts
    first = files + ["raw"] if _first_key(k).op in ("TEXT", "BODY") else files

    def f(m: Message) -> list[str]:
        r = parse_recipe(cache.get(m.digest, TEXTS))
        if r is None:
            return first
        own = sorted({x if isinstance(x, str) else "raw" for x in r})
        return own + [x for x in files if x not in own and x != "rawheader"]
    return f


def _has_op(k: p.Key, op: str) -> bool:
    """k uses a key of kind op (the parser bounds the depth: docs/decisions.md)."""
    return k.op == op or any(_has_op(x, op) for x in k.kids or ())


def modseq_reporter(s, key: p.Key) -> Callable[["Message"], int] | None:
    """For a search with a MODSEQ key (which enables CONDSTORE, RFC 7162
    3.1): a message's MODSEQ, for the reply's highest; else None."""
    if not _has_op(key, "MODSEQ"):
        return None
    condstore.enable(s, [condstore.CONDSTORE])
    box = s.box
    return lambda m: box.modseqs.of(m.uid)


def parse_search(r: p.Reader):
    return p.search_program(r)


def charset_refused(s, req: Request, charset: str | None) -> bool:
    """Refuse (NO [BADCHARSET]) a charset we do not search in."""
    if charset is None or charset.upper() in CHARSETS:
        return False
    s.updates(req)
    s.tagged(req, f'NO [BADCHARSET] ("US-ASCII" "UTF-8") {req.echo} failed')
    return True


def _bind_saved(k: p.Key, uids: frozenset[int]) -> p.Key:
    """k with `$` (a SEQ or UID key of SAVED_SET) made the saved messages."""
    if k.op in ("SEQ", "UID") and k.args[0] == p.SAVED_SET:
        return p.Key("UIDIN", (uids,))
    if k.kids:
        return p.Key(k.op, k.args, [_bind_saved(x, uids) for x in k.kids])
    return k


def matching(s, key: p.Key) -> list[Message]:
    """The messages of the selected mailbox that key matches, in mailbox
    order (SEARCH, SORT, THREAD).  ALL on a lazy view: every place of it
    (msgview.Picked), no message made; numbers() and summary.columns
    answer from its columns, anything else walks it as a list."""
    box: Mailbox = s.box
    n = box.count()
    key = _bind_saved(key, frozenset(m.uid for m in esearch.saved(s)))
    if _all(key) and (lazy := box.lazy()) is not None:
        return msgview.Picked(lazy, range(len(lazy)))
    cache = fetchcache.for_box(box.ns, box.path, s.opts.site) \
        if _reads_texts(key) and fetchcache.worth(box.ns, box.path, s.opts.site, n) else None
    if _all(key):
        return [m for m in box.msgs if not m.expunged]      # nothing to read
    files = Files(box.view)
    saves = savedate.table(box.ns, box.path) if _has_op(key, "SAVEDATE") else None
    top = box.msgs[-1].uid if box.msgs else 0

    def test(m: Message) -> bool:
        if m.expunged:
            return False
        try:
            return Matcher(files, m, seqs[id(m)], n, top, cache, box, saves).match(key)
        except Exception as e:           # a message that vanished meanwhile
            if files.live():
                s.log(f"search {m.uid}: {e}")
            return False
    seqs = {id(m): i + 1 for i, m in enumerate(box.msgs)}
    try:
        return [m for m, hit in evaluate(files, list(box.msgs), test,
                                         first_files_cached(key, cache)) if hit]
    finally:
        if cache is not None and cache.pending:      # (the set costs O(mailbox))
            cache.flush({m.digest for m in box.msgs if not m.expunged})


def _all(key: p.Key) -> bool:
    return key.op == "AND" and all(k.op == "ALL" for k in key.kids)


def numbers(box: Mailbox, found, uid: bool):
    """What SEARCH, SORT and THREAD tell of each of found (matching's,
    in mailbox order): its UID, or its sequence number."""
    if isinstance(found, msgview.Picked):
        return found.numbers(uid)
    return [m.uid for m in found] if uid else box.seqs(found)


def search(s, req: Request) -> None:
    charset, key, ret = req.args
    if charset_refused(s, req, charset):
        esearch.forget(s, ret)
        return
    box: Mailbox = s.box
    modseq_of = modseq_reporter(s, key)
    s.report(expunges=req.uid, uid=req.uid)   # what changed first (RFC 3501 5.2, 7.4.1)
    found = matching(s, key)
    if ret is None:
        nums = numbers(box, found, req.uid)
        if rev2.on(s):          # RFC 9051 6.4.4: ESEARCH, as RETURN (ALL)
            s.untagged(rev2.esearch(req.tag, req.uid, nums))
        else:
            words = ["SEARCH"] + [str(h) for h in nums]
            if modseq_of and found:     # the highest MODSEQ found (RFC 7162 3.1.5)
                words.append(f"(MODSEQ {max(modseq_of(m) for m in found)})")
            s.untagged(" ".join(words))
    else:
        esearch.answer(s, req, ret, msgview.listed(found), ordered=False, modseq_of=modseq_of)
    s.ok(req)
