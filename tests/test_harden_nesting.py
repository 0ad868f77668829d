"""Issue 17, items 1 and 2: one hostile message or one hostile SEARCH must
not hurt anyone.  Real deliveries (upas.mbappend) into a host started as
`make run` starts it, then real IMAP and POP3 sessions; nested SEARCH
programs over a real imap4d socket.

What a part beyond mime.MAX_DEPTH becomes: docs/decisions.md, "MIME
nesting"; BODYSTRUCTURE writes it as Dovecot writes a part its parser did
not split (lib-imap/imap-bodystructure.c: "application" "octet-stream").
"""
import hashlib
import imaplib
import os
import poplib
import re
import subprocess
import sys

import pytest

from fuzz.nesting import mime_bomb, mime_flood, search_bomb
from upas.imap4d import parser as p
from upas.mail import mime

pytestmark = pytest.mark.timeout(120)

BOMBS = {
    "multipart-1000": mime_bomb(1000, "multipart", subject=b"bomb multipart"),
    "rfc822-1000": mime_bomb(1000, "rfc822", subject=b"bomb rfc822"),
    "mixed-400": mime_bomb(400, "mixed", subject=b"bomb mixed"),
    "flood-30000": mime_flood(30000, subject=b"bomb flood"),
}
AFTER = b"From: glenda@example.org\nSubject: after the bombs\n\nstill here\n"


def deliver(host, msg: bytes, user: str = "glenda") -> None:
    r = subprocess.run([sys.executable, "-m", "upas.mbappend", f"/mail/box/{user}/mbox"],
                       input=msg, timeout=60, capture_output=True,
                       env=dict(os.environ, MAILROOT=str(host.mailroot), user=user))
    assert r.returncode == 0, r.stderr


def messages(mbox: bytes) -> list[bytes]:
    """The raw messages of an mbox, From lines removed (what RETR and
    BODY[] give, modulo CRLF)."""
    out = re.split(rb"(?m)^From [^\n]*\n", mbox)[1:]
    return [m[:-1] if m.endswith(b"\n\n") else m for m in out]


@pytest.fixture(scope="module")
def bombed(mail_host):
    """glenda's mailbox: the test mail, the bombs, one more message."""
    assert len(BOMBS["multipart-1000"]) < 64 * 1024       # the 64 KB message
    for msg in BOMBS.values():
        deliver(mail_host, msg)
    deliver(mail_host, AFTER)
    return mail_host


def test_mime_parse_is_bounded():
    """The tree stops at MAX_DEPTH and MAX_PARTS; the part at the cap keeps
    its declared type and has its unsplit body as its files."""
    for name, msg in BOMBS.items():
        buf = b"From bomb Thu Jan  1 00:00:00 GMT 1970\n" + msg
        top = mime.parse_message(buf, 0, len(buf), mime.Ids())
        depth, part, n = 0, top, sum(1 for _ in top.walk())
        while part.parts:
            part, depth = part.parts[0], depth + 1
        if name.startswith("flood"):
            assert len(top.parts) == mime.MAX_PARTS - 1 and n == mime.MAX_PARTS
            assert mime.count_ids(buf, 0, len(buf)) == mime.MAX_PARTS
            # the last part took the rest: nothing of the message is dropped
            assert top.parts[-1].end == top.bend
            continue
        assert depth == mime.MAX_DEPTH and n == mime.MAX_DEPTH + 1
        assert part.type in (b"multipart/mixed", b"message/rfc822")
        assert part.parts == [] and b"deep\n" in part.file("body")
        assert part.file("rawbody") == part.file("body")


def _imap(host) -> imaplib.IMAP4:
    h, port = host.addrs["imap4d"]
    c = imaplib.IMAP4(h, port, timeout=60)
    c.login_cram_md5("glenda", "glenda-apop")
    return c


def test_imap_select_fetch_search_survive_bombs(bombed):
    mbox = (bombed.mailroot / "box" / "glenda" / "mbox").read_bytes()
    want = messages(mbox)
    c = _imap(bombed)
    typ, data = c.select("INBOX")
    assert typ == "OK" and int(data[0]) == len(want)
    # every message is served, bombs or not, byte for byte
    typ, data = c.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK"
    got = [x[1].replace(b"\r\n", b"\n") for x in data if isinstance(x, tuple)]
    assert got == want
    typ, data = c.fetch("1:*", "(BODYSTRUCTURE)")
    assert typ == "OK" and len(data) == len(want)
    structures = {}
    for i, raw in enumerate(want, 1):
        subj = re.search(rb"(?m)^Subject: (.*)$", raw)
        structures[subj.group(1) if subj else b""] = i
    # the multipart bomb: MAX_DEPTH levels, the part at the cap is opaque
    typ, data = c.fetch(str(structures[b"bomb multipart"]), "(BODYSTRUCTURE)")
    bs = data[0]
    assert bs.count(b"(") >= mime.MAX_DEPTH
    assert b'("APPLICATION" "OCTET-STREAM" ("BOUNDARY" "B100")' in bs.upper()
    deepest = ".".join(["1"] * mime.MAX_DEPTH)
    typ, data = c.fetch(str(structures[b"bomb multipart"]), f"(BODY.PEEK[{deepest}])")
    assert typ == "OK" and b"--b100" in data[0][1] and b"deep" in data[0][1]
    typ, data = c.fetch(str(structures[b"bomb multipart"]), f"(BODY.PEEK[{deepest}.1])")
    assert typ == "OK" and data[0][1] in (b"", None)
    # SEARCH reads every part (the flood's 10000 cost seconds: left out)
    flood = structures[b"bomb flood"]
    rest = f"1:{flood - 1},{flood + 1}:*"
    typ, data = c.search(None, rest, "TEXT", '"still here"')
    assert typ == "OK" and data[0].split() == [str(len(want)).encode()]
    typ, data = c.search(None, rest, "BODY", "deep")
    assert typ == "OK" and len(data[0].split()) == 3
    c.logout()


def test_pop3_login_and_retr_survive_bombs(bombed):
    mbox = (bombed.mailroot / "box" / "glenda" / "mbox").read_bytes()
    want = messages(mbox)
    h, port = bombed.addrs["pop3"]
    pc = poplib.POP3(h, port, timeout=60)
    chal = re.search(rb"<[^>]+>", pc.getwelcome()).group(0)
    assert pc._shortcmd("APOP glenda " + hashlib.md5(chal + b"glenda-apop").hexdigest()
                        ).startswith(b"+OK")
    assert pc.stat()[0] == len(want)
    for i in (len(want) - 1, len(want)):
        lines = pc.retr(i)[1]
        assert b"\n".join(lines) + b"\n" == want[i - 1].rstrip(b"\n") + b"\n"
    pc.quit()


# ------------------------------------------------------------ SEARCH nesting

@pytest.mark.parametrize("how", ["(", "NOT", "OR"])
def test_search_bomb_gets_bad_and_session_lives(imap_preauth, how):
    c = imap_preauth.connect()
    assert c.cmd(b"s SELECT INBOX")[-1].startswith(b"s OK")
    r = c.cmd(b"a SEARCH " + search_bomb(1000, how))
    assert r == [b"a BAD SEARCH search program nested too deeply\r\n"]
    r = c.cmd(b"u UID SEARCH " + search_bomb(5000, how))
    assert r == [b"u BAD uid SEARCH search program nested too deeply\r\n"]
    # nesting up to the bound works, and so does the session
    r = c.cmd(b"b SEARCH " + search_bomb(p.MAX_SEARCH_NESTING, how))
    assert r[-1].startswith(b"b OK"), r
    assert r[0].startswith(b"* SEARCH 1 ")
    assert c.cmd(b"c NOOP")[-1].startswith(b"c OK")


def test_deepest_unflattened_search_evaluates(imap_preauth):
    """Nesting that cannot be flattened, at the bound: the evaluator's
    recursion fits (no internal error, no dropped connection)."""
    n = p.MAX_SEARCH_NESTING
    deep = b"(ALL " * (n - 1) + b"NOT DELETED" + b")" * (n - 1)
    alt = b"NOT (" * (n // 2) + b"ALL" + b")" * (n // 2)
    c = imap_preauth.connect()
    assert c.cmd(b"s SELECT INBOX")[-1].startswith(b"s OK")
    r = c.cmd(b"a SEARCH " + deep)
    assert r[-1].startswith(b"a OK") and r[0].startswith(b"* SEARCH 1"), r
    r = c.cmd(b"b SEARCH TEXT hello " + alt)
    assert r[-1].startswith(b"b OK"), r
    r = c.cmd(b"c SEARCH (" + deep + b")")
    assert r == [b"c BAD SEARCH search program nested too deeply\r\n"]
