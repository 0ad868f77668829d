"""The formal syntax of IMAP server responses, as an ABNF grammar, and a
checker of a server's byte stream against it (issue 13).

The rules are RFC 3501 section 9's (with its errata's body-fld-dsp),
restricted to what a server sends, plus those of the extensions imap4d
advertises: NAMESPACE (RFC 2342), ID (RFC 2971), ENABLE (RFC 5161),
UIDPLUS (RFC 4315), LIST-EXTENDED (RFC 5258, with RFC 4466's
tagged-ext-val), CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154), whose
attributes are flag-extensions, IDLE and LIST-STATUS (RFC 2177, 5819:
no new response syntax), SORT and THREAD (RFC 5256), ESEARCH (RFC 4731,
ESORT's too), STATUS=SIZE (RFC 8438) and QUOTA (RFC 9208).  One reading is made explicit: a text after no
code may not begin with `[` (every client takes `[...]` for a code, so
`* OK [UNSEEN 3]` is a code without its text, not a text).  RFC 3501's prose values (`<any CHAR except
...>`) are spelt as byte ranges; tagged-ext-comp's left recursion is
written as a repetition (the same language).  The grammar is interpreted
by the `abnf` package (PyPI), a parser of RFC 5234 grammars.

A literal's count cannot be said in ABNF: the checker cuts each literal
out of the stream by its count (checking its bytes are CHAR8, no NUL) and
puts a NUL in its place, which only the `literal` rule accepts.

`ReplyChecker` is fed the server's bytes (and, to notice STARTTLS, the
client's); every complete response that the grammar does not derive is
kept in `violations`.  tests/fixtures/acceptor.py runs one on every IMAP
connection of the test suite.
"""
from __future__ import annotations

import functools
import re

from abnf import Rule as _Rule
from abnf.grammars.misc import load_grammar_rules
from abnf.parser import ParseError

GRAMMAR = r'''
reply           = greeting / continue-req / response-data / response-tagged

greeting        = "*" SP (resp-cond-auth / resp-cond-bye) CRLF
continue-req    = "+" SP (resp-text / base64) CRLF
response-data   = "*" SP (resp-cond-state / resp-cond-bye / mailbox-data / message-data / capability-data / namespace-response / id-response / enable-data) CRLF
response-tagged = tag SP resp-cond-state CRLF

resp-cond-auth  = ("OK" / "PREAUTH") SP resp-text
resp-cond-bye   = "BYE" SP resp-text
resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text
resp-text       = "[" resp-text-code "]" SP text / text-no-code
text-no-code    = TEXT-NO-BRACKET *TEXT-CHAR
TEXT-NO-BRACKET = %x01-09 / %x0B-0C / %x0E-5A / %x5C-7F
resp-text-code  = "ALERT" / "BADCHARSET" [SP "(" astring *(SP astring) ")" ] / capability-data / "PARSE" / "PERMANENTFLAGS" SP "(" [flag-perm *(SP flag-perm)] ")" / "READ-ONLY" / "READ-WRITE" / "TRYCREATE" / "UIDNEXT" SP nz-number / "UIDVALIDITY" SP nz-number / "UNSEEN" SP nz-number / "APPENDUID" SP nz-number SP append-uid / "COPYUID" SP nz-number SP uid-set SP uid-set / "UIDNOTSTICKY" / atom [SP 1*CODE-CHAR]
CODE-CHAR       = %x01-09 / %x0B-0C / %x0E-5C / %x5E-7F
text            = 1*TEXT-CHAR
TEXT-CHAR       = %x01-09 / %x0B-0C / %x0E-7F

capability-data = "CAPABILITY" *(SP capability) SP "IMAP4rev1" *(SP capability)
capability      = ("AUTH=" auth-type) / atom
auth-type       = atom

mailbox-data    = "FLAGS" SP flag-list / "LIST" SP mailbox-list / "LSUB" SP mailbox-list / "SEARCH" *(SP nz-number) / "STATUS" SP mailbox SP "(" [status-att-list] ")" / number SP "EXISTS" / number SP "RECENT" / sort-data / thread-data / esearch-response / quota-response / quotaroot-response
sort-data       = "SORT" *(SP nz-number)
thread-data     = "THREAD" [SP 1*thread-list]
thread-list     = "(" (thread-members / thread-nested) ")"
thread-members  = nz-number *(SP nz-number) [SP thread-nested]
thread-nested   = 2*thread-list
esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
search-correlator = SP "(" "TAG" SP string ")"
search-return-data = "MIN" SP nz-number / "MAX" SP nz-number / "ALL" SP sequence-set / "COUNT" SP number
quota-response  = "QUOTA" SP astring SP quota-list
quota-list      = "(" [quota-resource *(SP quota-resource)] ")"
quota-resource  = atom SP number SP number
quotaroot-response = "QUOTAROOT" SP mailbox *(SP astring)
mailbox-list    = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox [SP mbox-list-extended]
mbx-list-flags  = *(mbx-list-oflag SP) mbx-list-sflag *(SP mbx-list-oflag) / mbx-list-oflag *(SP mbx-list-oflag)
mbx-list-oflag  = "\Noinferiors" / "\Subscribed" / "\Remote" / flag-extension
mbx-list-sflag  = "\Noselect" / "\Marked" / "\Unmarked" / "\NonExistent"
mbox-list-extended = "(" [mbox-list-extended-item *(SP mbox-list-extended-item)] ")"
mbox-list-extended-item = astring SP tagged-ext-val
tagged-ext-val  = tagged-ext-simple / "(" [tagged-ext-comp] ")"
tagged-ext-simple = sequence-set / number
tagged-ext-comp = tagged-ext-comp-item *(SP tagged-ext-comp-item)
tagged-ext-comp-item = astring / "(" tagged-ext-comp ")"
status-att-list = status-att SP number *(SP status-att SP number)
status-att      = "MESSAGES" / "RECENT" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN" / "SIZE" / "DELETED-STORAGE"
mailbox         = "INBOX" / astring

message-data    = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))
msg-att         = "(" msg-att-item *(SP msg-att-item) ")"
msg-att-item    = msg-att-dynamic / msg-att-static
msg-att-dynamic = "FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")"
msg-att-static  = "ENVELOPE" SP envelope / "INTERNALDATE" SP date-time / "RFC822" [".HEADER" / ".TEXT"] SP nstring / "RFC822.SIZE" SP number / "BODY" ["STRUCTURE"] SP body / "BODY" section ["<" number ">"] SP nstring / "UID" SP uniqueid

envelope        = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"
env-bcc         = "(" 1*address ")" / nil
env-cc          = "(" 1*address ")" / nil
env-date        = nstring
env-from        = "(" 1*address ")" / nil
env-in-reply-to = nstring
env-message-id  = nstring
env-reply-to    = "(" 1*address ")" / nil
env-sender      = "(" 1*address ")" / nil
env-subject     = nstring
env-to          = "(" 1*address ")" / nil
address         = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"
addr-adl        = nstring
addr-host       = nstring
addr-mailbox    = nstring
addr-name       = nstring

body            = "(" (body-type-1part / body-type-mpart) ")"
body-type-1part = (body-type-msg / body-type-text / body-type-basic) [SP body-ext-1part]
body-type-basic = media-basic SP body-fields
body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
body-type-msg   = media-message SP body-fields SP envelope SP body SP body-fld-lines
body-type-text  = media-text SP body-fields SP body-fld-lines
body-fields     = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets
body-fld-param  = "(" string SP string *(SP string SP string) ")" / nil
body-fld-id     = nstring
body-fld-desc   = nstring
body-fld-enc    = (DQUOTE ("7BIT" / "8BIT" / "BINARY" / "BASE64" / "QUOTED-PRINTABLE") DQUOTE) / string
body-fld-octets = number
body-fld-lines  = number
body-ext-1part  = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]
body-ext-mpart  = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]
body-fld-md5    = nstring
body-fld-dsp    = "(" string SP body-fld-param ")" / nil
body-fld-lang   = nstring / "(" string *(SP string) ")"
body-fld-loc    = nstring
body-extension  = nstring / number / "(" body-extension *(SP body-extension) ")"
media-basic     = ((DQUOTE ("APPLICATION" / "AUDIO" / "IMAGE" / "MESSAGE" / "VIDEO") DQUOTE) / string) SP media-subtype
media-message   = DQUOTE "MESSAGE" DQUOTE SP DQUOTE "RFC822" DQUOTE
media-text      = DQUOTE "TEXT" DQUOTE SP media-subtype
media-subtype   = string

section         = "[" [section-spec] "]"
section-spec    = section-msgtext / (section-part ["." section-text])
section-msgtext = "HEADER.FIELDS.NOT" SP header-list / "HEADER.FIELDS" SP header-list / "HEADER" / "TEXT"
section-part    = nz-number *("." nz-number)
section-text    = section-msgtext / "MIME"
header-list     = "(" header-fld-name *(SP header-fld-name) ")"
header-fld-name = astring

date-time       = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
date-day-fixed  = (SP DIGIT) / 2DIGIT
date-month      = "Jan" / "Feb" / "Mar" / "Apr" / "May" / "Jun" / "Jul" / "Aug" / "Sep" / "Oct" / "Nov" / "Dec"
date-year       = 4DIGIT
time            = 2DIGIT ":" 2DIGIT ":" 2DIGIT
zone            = ("+" / "-") 4DIGIT

flag-list       = "(" [flag *(SP flag)] ")"
flag            = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword / flag-extension
flag-fetch      = flag / "\Recent"
flag-perm       = flag / "\*"
flag-keyword    = atom
flag-extension  = "\" atom

namespace-response = "NAMESPACE" SP namespace SP namespace SP namespace
namespace       = nil / "(" 1*namespace-descr ")"
namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) *namespace-response-extension ")"
namespace-response-extension = SP string SP "(" string *(SP string) ")"
id-response     = "ID" SP id-params-list
id-params-list  = "(" [string SP nstring *(SP string SP nstring)] ")" / nil
enable-data     = "ENABLED" *(SP capability)

append-uid      = uniqueid / uid-set
uid-set         = (uniqueid / uid-range) *("," (uniqueid / uid-range))
uid-range       = uniqueid ":" uniqueid
sequence-set    = (seq-number / seq-range) *("," (seq-number / seq-range))
seq-range       = seq-number ":" seq-number
seq-number      = nz-number / "*"
uniqueid        = nz-number

astring         = 1*ASTRING-CHAR / string
ASTRING-CHAR    = ATOM-CHAR / "]"
atom            = 1*ATOM-CHAR
ATOM-CHAR       = %x21 / %x23-24 / %x26-27 / %x2B-5B / %x5E-7A / %x7C-7E
tag             = 1*TAG-CHAR
TAG-CHAR        = %x21 / %x23-24 / %x26-27 / %x2C-5B / %x5D-7A / %x7C-7E
nstring         = string / nil
string          = quoted / literal
quoted          = DQUOTE *QUOTED-CHAR DQUOTE
QUOTED-CHAR     = %x01-09 / %x0B-0C / %x0E-21 / %x23-5B / %x5D-7F / "\" DQUOTE / "\" "\"
literal         = "{" number "}" CRLF %x00
nil             = "NIL"
number          = 1*DIGIT
nz-number       = %x31-39 *DIGIT

base64          = *(4base64-char) [base64-terminal]
base64-char     = ALPHA / DIGIT / "+" / "/"
base64-terminal = (2base64-char "==") / (3base64-char "=")
'''


def _rules(text: str) -> list[str]:
    """The grammar's rules, one string each (a rule may not span lines here)."""
    return [line for line in text.strip().splitlines() if line and not line.startswith(";")]


@load_grammar_rules()
class Rule(_Rule):
    grammar = _rules(GRAMMAR)


_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


@functools.lru_cache(maxsize=4096)
def violation(response: bytes) -> str | None:
    """Why one whole response (its CRLF and literals included) is not a
    `reply` of the grammar; None when it is one."""
    text = bytearray()
    rest = response
    while True:
        nl = rest.find(b"\r\n")
        if nl < 0:
            return "no CRLF at the end"
        line, rest = rest[:nl + 2], rest[nl + 2:]
        if b"\n" in line[:-2] or b"\r" in line[:-2] or b"\0" in line:
            return "a bare CR, LF or NUL in a line"
        text += line
        m = _LITERAL.search(line)
        if not m or not rest:
            break
        n = int(m.group(1))
        data, rest = rest[:n], rest[n:]
        if len(data) < n or b"\0" in data:
            return "a literal shorter than its count, or holding a NUL (CHAR8)"
        text += b"\0"
    if rest:
        return "bytes after the CRLF"
    try:
        Rule("reply").parse_all(text.decode("latin-1"))
    except ParseError as e:
        return f"not a reply (RFC 3501 9 and extensions): {e}"[:300]
    return None


class ReplyChecker:
    """Cuts a server's byte stream into responses (a line, and a literal and
    the rest of the line after each `{n}` at its end) and keeps those the
    grammar refuses.  Once a STARTTLS the client sent is answered OK the
    rest is TLS, not checked."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.violations: list[tuple[bytes, str]] = []
        self.checked = 0
        self.stopped = False
        self._starttls: set[bytes] = set()

    def client(self, data: bytes) -> None:
        for m in re.finditer(rb"(?mi)^(\S+) STARTTLS\r?$", data):
            self._starttls.add(m.group(1))

    def feed(self, data: bytes) -> None:
        if self.stopped:
            return
        self.buf += data
        while not self.stopped:
            end = self._response_end()
            if end is None:
                return
            response = bytes(self.buf[:end])
            del self.buf[:end]
            self.check(response)

    def check(self, response: bytes) -> None:
        self.checked += 1
        why = violation(response)
        if why is not None:
            self.violations.append((response[:400], why))
        tag = response.split(b" ", 1)[0]
        if tag in self._starttls and response.split(b" ")[1:2] == [b"OK"]:
            self.stopped = True

    def _response_end(self) -> int | None:
        """Where the first complete response in the buffer ends."""
        pos = 0
        while True:
            nl = self.buf.find(b"\n", pos)
            if nl < 0:
                return None
            m = _LITERAL.search(bytes(self.buf[max(pos, nl - 14):nl + 1]))
            if m is None or not self.buf[pos:nl - 1].strip():
                return nl + 1
            pos = nl + 1 + int(m.group(1))
            if pos > len(self.buf):
                return None
