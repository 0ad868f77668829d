"""FETCH and UID FETCH (docs/spec/servers.md §3.10-3.11, docs/decisions.md).

Message data come from the upasfs files of the message and of its MIME
part directories: `rawheader` (a message's header), `mimeheader` (a part's
own header), `rawbody`, `unixheader`, and the numbered subdirectories.
"""
from __future__ import annotations

import re
import time

from upas.imap4d import binary, condstore, fetchcache, flagreport, rev2, savedate
from upas.imap4d import envelope as env
from upas.imap4d import parser as p
from upas.imap4d.mailbox import Mailbox, MailboxError, Message
from upas.imap4d.prefetch import Files, evaluate, raw_messages
from upas.imap4d.request import Request
from upas.mail import fsview

SEEN_SETTERS = ("RFC822", "RFC822.TEXT")
ZONES = {"GMT": 0, "UT": 0, "UTC": 0, "Z": 0, "EST": -500, "EDT": -400,
         "CST": -600, "CDT": -500, "MST": -700, "MDT": -600, "PST": -800,
         "PDT": -700, "BST": 100, "CET": 100, "CEST": 200, "MET": 100,
         "MEST": 200, "EET": 200, "EEST": 300, "JST": 900}


# ------------------------------------------------------------ the MIME tree

class Node:
    """A message or one of its MIME parts, as a path under the message dir.

    `bounded`: the node ends where a boundary line of an enclosing
    multipart starts.  upasfs (as plan9port's) keeps the line break before
    that boundary in the part's files; RFC 2046 5.1.1 gives it to the
    boundary, so body() leaves it out (docs/decisions.md)."""

    def __init__(self, files: Files, msg: Message, rel: str = "",
                 default_type: str = "text/plain", bounded: bool = False):
        self.files, self.msg, self.rel, self.default_type = files, msg, rel, default_type
        self.bounded = bounded

    def file(self, name: str) -> bytes:
        return self.files.read(self.msg, f"{self.rel}/{name}" if self.rel else name)

    def body(self) -> bytes:
        """The node's body as IMAP sends it: CRLF line ends, without the
        line break that belongs to the next boundary."""
        data = env.crlf(self.file("rawbody"))
        if self.bounded and data.endswith(b"\r\n"):
            data = data[:-2]
        return data

    def mime_header(self) -> bytes:
        """The header holding this node's Content-* fields (a top-level
        message's mimeheader is empty: docs/spec/fs-auth.md §1.4)."""
        if not self.rel:
            return self.file("rawheader")
        return self.file("mimeheader") or self.file("rawheader")

    def ctype(self) -> env.ContentType:
        return env.content_type(self.mime_header(), self.default_type)

    def children(self) -> list["Node"]:
        ct = self.ctype()
        dflt = "message/rfc822" if ct.subtype == "digest" else "text/plain"
        multi = ct.type == "multipart"
        return [Node(self.files, self.msg, f"{self.rel}/{k}" if self.rel else str(k), dflt, multi)
                for k in self.files.parts(self.msg, self.rel)]

    def embedded(self) -> "Node | None":
        """The message inside a message/rfc822 node (it ends where the node does)."""
        kids = self.files.parts(self.msg, self.rel)
        return Node(self.files, self.msg, f"{self.rel}/1" if self.rel else "1",
                    bounded=self.bounded) if kids else None

    def is_rfc822(self) -> bool:
        ct = self.ctype()
        return ct.type == "message" and ct.subtype == "rfc822"


def navigate(top: Node, part: tuple[int, ...]) -> Node | None:
    """The node that section part numbers name (RFC 3501 6.4.5): the parts
    of a multipart, part 1 of anything else; and below a message/rfc822
    part -- the top-level message's part 1 too -- the parts of the
    message it holds."""
    node, as_part = top, False
    for k in part:
        holder = node
        if as_part and node.is_rfc822():
            holder = node.embedded()
            if holder is None:
                return None
        if holder.ctype().type == "multipart":
            kids = holder.children()
            if not 1 <= k <= len(kids):
                return None
            node = kids[k - 1]
        elif k != 1:
            return None
        else:
            node = holder
        as_part = True
    return node


def section_data(top: Node, sec: p.Section) -> bytes:
    if not sec.part:
        return message_section(top, sec)
    node = navigate(top, sec.part)
    if node is None:
        return b""
    if sec.text == "MIME":
        return env.header_block(node.mime_header())
    if sec.text == "":
        return node.body()
    if node.is_rfc822() and node.embedded() is not None:
        return message_section(node.embedded(), sec)
    if node is top:             # Plan 9: 1.HEADER of a one-part message is its header
        return message_section(top, sec)
    return b""


def message_section(m: Node, sec: p.Section) -> bytes:
    hdr = m.file("rawheader")
    if sec.text == "HEADER":
        return env.header_block(hdr)
    if sec.text == "TEXT":
        return m.body()
    if sec.text.startswith("HEADER.FIELDS"):
        return env.select_fields(hdr, sec.fields, sec.text.endswith(".NOT"))
    return env.header_block(hdr) + m.body()


# ------------------------------------------------------------ structure

def bodystructure(node: Node, ext: bool, site: str) -> bytes:
    ct = node.ctype()
    hdr = node.mime_header()
    if ct.type == "multipart":
        kids = node.children()
        if kids:
            out = b"(" + b"".join(node.files.gather(lambda k: bodystructure(k, ext, site),
                                                    kids, b"")) + \
                b" " + env.istring(ct.subtype)
            if ext:
                out += b" " + env.plist(ct.params) + b" " + env.disposition(hdr) + b" " + \
                    env.istring(env.field(hdr, "content-language"))
            return out + b")"
    body = node.body()
    enc = env.field(hdr, "content-transfer-encoding")
    ctype, subtype = ct.type, ct.subtype
    if ct.type == "multipart" or (ct.type == "message" and ct.subtype == "rfc822"
                                  and node.embedded() is None):
        # no parts (none found, or not split past mime.MAX_DEPTH): an opaque
        # leaf, as Dovecot writes a part its parser did not split
        ctype, subtype = "application", "octet-stream"
    items = [env.istring(ctype), env.istring(subtype), env.plist(ct.params),
             env.istring(env.field(hdr, "content-id")),
             env.istring(env.field(hdr, "content-description")),
             env.istring(enc.decode("ascii", "replace").upper() if enc else "7BIT"),
             b"%d" % len(body)]
    if ctype == "message" and subtype == "rfc822":
        inner = node.embedded()
        items += [env.envelope(inner.file("rawheader"), site),
                  bodystructure(inner, ext, site), b"%d" % body.count(b"\n")]
    elif ctype == "text":
        items.append(b"%d" % body.count(b"\n"))
    if ext:
        items += [env.NIL, env.disposition(hdr), env.istring(env.field(hdr, "content-language"))]
    return b"(" + b" ".join(items) + b")"


# ------------------------------------------------------------ simple items

def internaldate(unixheader: bytes) -> str:
    """The From-line date as `DD-Mon-YYYY HH:MM:SS +ZZZZ` (two-digit day,
    docs/decisions.md); an unparsable date gives the current time, as Plan 9."""
    m = re.search(rb"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(?: ([A-Za-z]+|[+-]\d{4}))? (\d{4})",
                  unixheader)
    mon = m and p._MONTH.get(m.group(1).decode().lower())
    if not m or not mon:
        t = time.localtime()
        off = t.tm_gmtoff // 60
        return "%02d-%s-%d %02d:%02d:%02d %s%02d%02d" % (
            t.tm_mday, p.MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec,
            "-" if off < 0 else "+", abs(off) // 60, abs(off) % 60)
    zone = (m.group(6) or b"GMT").decode()
    z = int(zone) if zone[0] in "+-" else ZONES.get(zone.upper(), 0)
    return "%02d-%s-%s %s:%s:%s %s%04d" % (int(m.group(2)), p.MONTHS[mon - 1], m.group(7).decode(),
                                           m.group(3).decode(), m.group(4).decode(),
                                           m.group(5).decode(), "-" if z < 0 else "+", abs(z))


def saved(saves: dict[str, int], files: Files, m: Message) -> str:
    """The message's save date (RFC 8514) from the mailbox's table
    (savedate.table, read once a command): as imap4d recorded it, else its
    internal date, the moment upas delivered it."""
    when = saves.get(m.digest)
    if when is None:
        return internaldate(files.read(m, "unixheader"))
    return savedate.date_time(when)


def rfc822_size(files: Files, m: Message) -> int:
    size = m.cache.get("size")
    if size is None:
        top = Node(files, m)
        size = len(env.header_block(top.file("rawheader"))) + len(env.crlf(top.file("rawbody")))
        files.keep(lambda: m.cache.__setitem__("size", size))
    return size


def flags_item(m: Message) -> bytes:
    return ("FLAGS (" + " ".join(m.flag_list()) + ")").encode()


# items computed from the message's content (and the site) alone
CONTENT_ITEMS = ("RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE")
# items that need no file of the message: what a client's sync asks of
# every message (UID FETCH 1:* (FLAGS), with CHANGEDSINCE its MODSEQ
# too), answered without Files, all lines in one format (flagreport)
NO_FILES = (flagreport.FLAGS, flagreport.UID, flagreport.MODSEQ)


def cached_item(files: Files, m: Message, a: p.FetchAtt, site: str,
                cache: fetchcache.FetchCache | None) -> bytes:
    """item(), taken from or added to the digest cache when it is one of
    the items the content alone determines."""
    if cache is None or a.name not in CONTENT_ITEMS:
        return item(files, m, a, site)
    v = cache.get(m.digest, a.name)
    if v is None:
        v = item(files, m, a, site)
        files.keep(lambda: cache.put(m.digest, a.name, v))
    return v


def item(files: Files, m: Message, a: p.FetchAtt, site: str) -> bytes:
    top = Node(files, m)
    if a.name == "FLAGS":
        return flags_item(m)
    if a.name == "UID":
        return b"UID %d" % m.uid
    if a.name == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % rfc822_size(files, m)
    if a.name == "INTERNALDATE":
        return b'INTERNALDATE "' + internaldate(top.file("unixheader")).encode() + b'"'
    if a.name == "ENVELOPE":
        return b"ENVELOPE " + env.envelope(top.file("rawheader"), site)
    if a.name in ("BODY", "BODYSTRUCTURE"):
        return a.name.encode() + b" " + bodystructure(top, a.name == "BODYSTRUCTURE", site)
    if a.name.startswith("RFC822"):
        text = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[a.name]
        return env.literal(message_section(top, p.Section((), text)), a.name.encode() + b" ")
    if a.name.startswith("BINARY"):
        return binary_item(top, a)
    data = section_data(top, a.section)
    label = b"BODY[" + a.section.label().encode() + b"]"
    if a.partial is not None:
        start = min(a.partial[0], len(data))
        data = data[start:start + a.partial[1]]
        label += b"<%d>" % start
    return env.literal(data, label + b" ")


def binary_item(top: Node, a: p.FetchAtt) -> bytes:
    """BINARY[...] and BINARY.SIZE[...] (binary.py): the whole message as it
    is, a part decoded."""
    if not a.section.part:
        return binary.item(a, message_section(top, a.section), None)
    node = navigate(top, a.section.part)
    if node is None:
        return binary.item(a, b"", None)
    return binary.item(a, node.body(), node.mime_header())


def first_files(atts: list[p.FetchAtt], cache: fetchcache.FetchCache | None = None):
    """m -> the files of message m itself that these items certainly read
    (none for the items the digest cache holds for m)."""
    if cache is not None:
        mine = _files([a for a in atts if a.name not in CONTENT_ITEMS])
        rest = [a for a in atts if a.name in CONTENT_ITEMS]
        theirs = _files(rest)

        def files(m: Message) -> list[str]:
            if all(cache.get(m.digest, a.name) is not None for a in rest):
                return mine(m)
            return sorted(set(mine(m)) | set(theirs(m)))
        return files
    return _files(atts)


def _files(atts: list[p.FetchAtt]):
    want: set[str] = set()
    size = False
    for a in atts:
        if a.name == "RFC822.SIZE":
            want.add("rawheader")
            size = True
        elif a.name in ("ENVELOPE", "RFC822.HEADER"):
            want.add("rawheader")
        elif a.name in ("BODY", "BODYSTRUCTURE"):
            want.add("rawheader")
        elif a.name in ("RFC822", "RFC822.TEXT"):
            want |= {"rawheader", "rawbody"}
        elif a.name in ("INTERNALDATE", "SAVEDATE"):
            want.add("unixheader")
        elif a.section is not None and not a.section.part:
            want.add("rawheader")
            if a.section.text in ("", "TEXT"):
                want.add("rawbody")
    files = sorted(want)
    return lambda m: (files + ["rawbody"]) if size and "size" not in m.cache else files


def sets_seen(a: p.FetchAtt) -> bool:
    return a.name in SEEN_SETTERS or (a.name in ("BODY[]", "BINARY[]") and not a.peek)


# ------------------------------------------------------------ the command

def parse_fetch(r: p.Reader):
    ranges = r.seqset()
    r.sp()
    return ranges, p.fetch_atts(r), condstore.parse_fetch_modifiers(r)


def fetch(s, req: Request) -> None:
    ranges, atts, mods = req.args
    box: Mailbox = s.box
    bad = condstore.fetch_check(s, req, mods)
    if bad is not None:
        s.bad(req, bad)
        return
    if mods.changedsince is not None or any(a.name == "MODSEQ" for a in atts):
        condstore.enable(s, [condstore.CONDSTORE])
    # flags, UIDs, MODSEQs of every message (a client's sync) are told
    # from a lazy view's columns, no message made (msgview.Picked)
    columns = mods.changedsince is None and all(a.name in NO_FILES for a in atts)
    msgs, ok = s.resolve_present(ranges, req.uid, columns)
    if req.uid and not any(a.name == "UID" for a in atts):
        atts = [p.FetchAtt("UID")] + atts
    elif req.uid:
        atts = [p.FetchAtt("UID")] + [a for a in atts if a.name != "UID"]
    if mods.changedsince is not None:
        # only the messages changed since, with their MODSEQ after the
        # UID (RFC 7162 3.1.4.1); and with VANISHED the UIDs gone since
        # first (3.2.6)
        if mods.vanished:
            condstore.vanished_earlier(s, ranges, mods.changedsince)
        msgs = [m for m in msgs if box.modseqs.of(m.uid) > mods.changedsince]
        if not any(a.name == "MODSEQ" for a in atts):
            at = 1 if req.uid else 0
            atts = atts[:at] + [p.FetchAtt("MODSEQ")] + atts[at:]
    changed = []
    if any(sets_seen(a) for a in atts) and not box.readonly:
        try:
            changed = box.modify([m for m in msgs if "\\Seen" not in m.flags], _set_seen)
        except MailboxError:
            pass            # upasfs is gone: the reads below fail too
    s.announce_keywords()       # the merge may have brought others' keywords
    site = s.opts.site
    if all(a.name in NO_FILES for a in atts):
        flagreport.send(s, box, msgs, [a.name for a in atts])
        # one look at upasfs (resolve_present's), as STORE: mail that came
        # since is told at the next command (RFC 3501 7: at any time)
        box.listed = True
        _finish(s, req, box, atts, changed, ok, False)
        return
    cache = _cache(box, site, atts, len(msgs))
    files = Files(box.view)
    files.cuts = _cuts(box, msgs, first_files(atts, cache))
    saves = savedate.table(box.ns, box.path) if any(a.name == "SAVEDATE" for a in atts) else {}
    unknown_cte = []

    def response(m: Message) -> bytes | None:
        def one(i: int) -> bytes:
            a = atts[i]
            if a.name == "FLAGS":
                return b"FLAGS (" + rev2.flag_text(s, m).encode() + b")"
            if a.name == "MODSEQ":         # the mailbox's, not the message's
                return condstore.item(box, m)
            if a.name == "SAVEDATE":
                return b'SAVEDATE "' + saved(saves, files, m).encode() + b'"'
            return files.once(m, str(i), lambda: cached_item(files, m, a, site, cache))
        try:
            return b" ".join(files.gather(one, range(len(atts)), b""))
        except binary.UnknownCTE as e:
            if files.live():        # (not a stand-in's bytes)
                unknown_cte.append(str(e))
            return None
        except Exception as e:          # the message vanished under us
            if files.live():
                s.log(f"fetch {m.uid}: {e}")
            return None
    seqs = iter(box.seqs(msgs))     # evaluate gives every message, in order
    if len(files.cuts) == len(msgs) and all(_whole_item(a) for a in atts):
        answers = _whole_answers(s, files, msgs, atts, response)
    else:
        answers = evaluate(files, msgs, response, first_files(atts, cache))
    # the end of the last line of pieces, sent with the start of the next
    # line: two sends a message of a FETCH of whole messages, not four
    tail = b""
    try:
        for m, data in answers:
            n = next(seqs)
            if data is None:
                ok = False
                continue
            if type(data) is list:          # _whole_answers' pieces
                data[0] = b"%b* %d FETCH (%b" % (tail, n, data[0])
                tail = data.pop() + b")\r\n"
                for piece in data:
                    s.send(piece)
                continue
            s.send(b"%b* %d FETCH (%b)\r\n" % (tail, n, data))
            tail = b""
    finally:
        if cache is not None and cache.pending:      # (the set costs O(mailbox))
            cache.flush({m.digest for m in box.msgs if not m.expunged})
        if tail:                # a line begun is ended, whatever came after
            s.send(tail)
    _finish(s, req, box, atts, changed, ok, bool(unknown_cte))


# the labels of _whole_item's texts (BODY[] of a whole message, RFC822)
_TEXT_LABELS = {"RFC822": b"RFC822 ", "BODY[]": b"BODY[] "}


def _whole_item(a: p.FetchAtt) -> bool:
    """Whether a FETCH item needs of a message at most its whole text:
    BODY[] (not partial), RFC822, UID, FLAGS."""
    return a.name in ("UID", "FLAGS", "RFC822") or (
        a.name == "BODY[]" and a.partial is None and a.section == p.Section())


def _whole_answers(s, files: Files, msgs: list[Message], atts: list[p.FetchAtt], response):
    """(m, its FETCH data) of every message, in order, for items that
    _whole_item takes, from one read of its raw (prefetch.raw_messages),
    answered as item() does; a message whose raw cannot be cut is answered
    by `response` through evaluate.  The data is a list of pieces, the
    message's text one of them as it is (no copy into the line), the
    first and the last a small one (b"" if nothing comes after the text)."""
    # each item's name and what goes before it (its label, for a text)
    plan = [(a.name, (b" " if i else b"") + _TEXT_LABELS.get(a.name, b""))
            for i, a in enumerate(atts)]
    for m, raw, cut in raw_messages(files, msgs):
        whole = whole_text(raw, *cut) if raw is not None and cut is not None else None
        if whole is None:
            yield from evaluate(files, [m], response)
            continue
        pieces, cur = [], b""
        for name, before in plan:
            if name == "UID":
                cur += before + b"UID %d" % m.uid
            elif name == "FLAGS":
                cur += before + b"FLAGS (" + rev2.flag_text(s, m).encode() + b")"
            else:           # as env.literal(whole, label)
                pieces += [b"%b%b{%d}\r\n" % (cur, before, len(whole)), whole]
                cur = b""
        pieces.append(cur)
        yield m, pieces


def whole_text(raw: bytes, header: int, body: int) -> bytes | None:
    """A message's BODY[] (message_section: header_block of rawheader, then
    rawbody with CRLF line ends) from its raw, given the lengths of the two
    (None: the lengths do not prove the cut).  When a newline parts a
    header that ends in one from the body -- nearly every message -- that
    is raw with CRLF line ends, made in one pass, with no copy of either."""
    gap = fsview.raw_gap(raw, header, body)
    if gap is None:
        return None
    if gap == 1 and (header == 0 or raw[header - 1:header] == b"\n"):
        return env.crlf(raw)
    return env.header_block(raw[:header]) + env.crlf(raw[header + gap:])


def _finish(s, req: Request, box: Mailbox, atts: list, changed: list[Message], ok: bool,
            unknown_cte: bool) -> None:
    """The flags \\Seen changed, unless FLAGS was fetched; the reply."""
    if changed and not any(a.name == "FLAGS" for a in atts):
        condstore.send_unsolicited(s, box, changed, False)
    if ok:
        s.ok(req)
    else:       # RFC 3516 4.3: an encoding BINARY cannot undo fails the FETCH
        s.no(req, code="UNKNOWN-CTE" if unknown_cte else None)


def _cache(box: Mailbox, site: str, atts: list[p.FetchAtt],
           n: int) -> fetchcache.FetchCache | None:
    """The mailbox's digest cache, if these items on n messages use it."""
    if not any(a.name in CONTENT_ITEMS for a in atts) or not fetchcache.worth(box.ns, box.path, site, n):
        return None
    return fetchcache.for_box(box.ns, box.path, site)


def _cuts(box: Mailbox, msgs: list[Message], files) -> dict[int, tuple[int, int]]:
    """Where the messages' rawheader and rawbody lie in their raw, when
    the items read both of many messages (BODY[], RFC822, RFC822.SIZE not
    in the digest cache; files(m): what m's items read, first_files): from
    one read of upasfs's summary, which costs about what reading both
    files of one message in sixteen does (prefetch.Files.cuts).  The first
    and the last message stand for all."""
    both = {"rawheader", "rawbody"}
    if not msgs or len(msgs) * 16 < len(box.msgs) or not all(
            both <= set(files(m)) for m in (msgs[0], msgs[-1])):
        return {}
    summary = box.view.summary()
    if summary is None:
        return {}
    cuts = summary.cuts()
    out = {}
    for m in msgs:
        c = cuts.get(m.fsnum)
        if c is not None and c[0] == m.digest:
            out[m.fsnum] = c[2:]
    return out


def _set_seen(m: Message) -> bool:
    if "\\Seen" in m.flags:
        return False
    m.flags = m.flags | {"\\Seen"}     # a message's flags may be shared (imp.flagset)
    return True
