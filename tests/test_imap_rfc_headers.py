"""Issue 13, header fields in ENVELOPE and SEARCH: group syntax (RFC 3501
7.4.2), folded fields (RFC 5322 2.2.3; one space per line break, as
upasfs's own `subject` file and Dovecot show them), and address keys that
match the parsed address (RFC 3501 6.4.4 FROM: "contains the specified
string", comments not being part of an address, RFC 5322 3.2.2).
Real imap4d over a real socket and a real posted upasfs."""
from __future__ import annotations

import os

import pytest

from upas import ninep

FOLDED = (b"From glenda Mon Nov 23 09:15:00 2026\n"
          b"From: a@x.org\n"
          b"To: group: a@x.org, b@y.org;\n"
          b"Cc: undisclosed-recipients:;\n"
          b"Subject: line one #8\n"
          b"\tfolded onto a second line\n"
          b"  and a third\n"
          b"\n"
          b"body\n\n")
COMMENTED = (b"From glenda Mon Nov 23 09:16:00 2026\n"
             b"From: <user (comment)@ (comment) domain.org>\n"
             b'To: a@x.org, Friends: "Doe, J" <j@d.org>, k@e.org;, last@z.org\n'
             b"Subject: comments\n"
             b"\n"
             b"body\n\n")
N = 8                       # messages in testdata glenda/mbox before these


@pytest.fixture
def srv(imap_preauth):
    with open(imap_preauth.box(), "ab") as f:
        f.write(FOLDED + COMMENTED)
    return imap_preauth


@pytest.fixture
def c(srv, imap_client):
    imap_client.cmd(b"s EXAMINE INBOX")
    return imap_client


def envelope(c, n: int) -> bytes:
    r = c.cmd(b"a FETCH %d ENVELOPE" % n)
    assert r[-1] == b"a OK FETCH completed\r\n", r
    prefix = b"* %d FETCH (ENVELOPE " % n
    assert r[0].startswith(prefix) and r[0].endswith(b")\r\n")
    return r[0][len(prefix):-3]


X = b'(NIL NIL "a" "x.org")'


def test_group_syntax_rfc3501_7_4_2(c):
    """"a special form of address structure in which the host name field
    is NIL.  If the mailbox name field is also NIL, this is an end of group
    marker ... If the mailbox name field is non-NIL, this is a start of
    group marker, and the mailbox name field holds the group name phrase.\""""
    assert envelope(c, N + 1) == (
        b'(NIL "line one #8 folded onto a second line and a third" '
        b"(" + X + b") (" + X + b") (" + X + b") "
        b'((NIL NIL "group" NIL)' + X + b'(NIL NIL "b" "y.org")(NIL NIL NIL NIL)) '
        b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)')


def test_group_among_addresses_and_comments_out_of_the_address(c):
    assert envelope(c, N + 2) == (
        b'(NIL "comments" ((NIL NIL "user" "domain.org")) ((NIL NIL "user" "domain.org")) '
        b'((NIL NIL "user" "domain.org")) '
        b"(" + X + b'(NIL NIL "Friends" NIL)("Doe, J" NIL "j" "d.org")(NIL NIL "k" "e.org")'
        b'(NIL NIL NIL NIL)(NIL NIL "last" "z.org")) NIL NIL NIL NIL)')


def test_imapclient_reads_the_groups(srv):
    """A real client's parse of the same reply: imapclient's Address list
    has the group start, the members and the end, in order."""
    from imapclient import IMAPClient
    cl = IMAPClient(srv.addr[0], port=srv.addr[1], ssl=False, timeout=20)
    cl.select_folder("INBOX", readonly=True)
    env = cl.fetch([N + 1], ["ENVELOPE"])[N + 1][b"ENVELOPE"]
    assert [(a.name, a.mailbox, a.host) for a in env.to] == [
        (None, b"group", None), (None, b"a", b"x.org"), (None, b"b", b"y.org"), (None, None, None)]
    assert env.subject == b"line one #8 folded onto a second line and a third"
    cl.logout()


def test_folded_subject_agrees_with_upasfs_subject_file(c, srv):
    subject = b"line one #8 folded onto a second line and a third"
    assert subject in envelope(c, N + 1)
    ns = srv.env["NAMESPACE"]
    with ninep.Client.dial("unix!" + os.path.join(ns, "upasfs"), uname="glenda") as fs:
        names = [st.name for st in fs.readdir("mbox") if st.name.isdigit()]
        subjects = {fs.read(f"mbox/{n}/subject") for n in names}
    assert subject in subjects


def test_search_from_matches_the_parsed_address(c):
    assert c.cmd(b"a SEARCH FROM user@domain.org") == [b"* SEARCH %d\r\n" % (N + 2),
                                                        b"a OK SEARCH completed\r\n"]
    # the raw text still matches as before, and so does a group's member
    assert c.cmd(b'b SEARCH FROM "(comment)"')[0] == b"* SEARCH %d\r\n" % (N + 2)
    assert c.cmd(b"c SEARCH TO j@d.org")[0] == b"* SEARCH %d\r\n" % (N + 2)
    assert c.cmd(b'd SEARCH TO "Doe, J <j@d.org>"')[0] == b"* SEARCH %d\r\n" % (N + 2)
    assert c.cmd(b"e SEARCH FROM nobody@domain.org")[0] == b"* SEARCH\r\n"
