"""neomutt with a header cache and `imap_condstore`/`imap_qresync` on
(issue 18): it syncs a folder, another session (imaplib) changes flags
and expunges, and when neomutt comes back it shows the change, having
asked for it with QRESYNC (SELECT ... (QRESYNC ...)), not by fetching
every message's flags again.  What neomutt sent is read from its own
debug log of the IMAP conversation."""
import re
import shutil

import pytest

from tests.test_clients_mutt import run_mutt, subjects

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("neomutt") is None,
                       reason="neomutt not installed (apt-get install neomutt)"),
]


def neomutt(srv, home, want, log):
    host, port = srv.addr
    cmds = (f"set folder=imap://glenda@{host}:{port}/; set spoolfile=+INBOX; "
            "set imap_condstore=yes; set imap_qresync=yes; set imap_passive=no; "
            "set ssl_force_tls=no; set ssl_starttls=no; "
            f"set header_cache={home}/hcache; set message_cachedir=''; "
            "set sort=threads; set sort_aux=date-sent; set index_format='S<%s|%Z>'; "
            "set charset=utf-8; set mail_check=60; set timeout=60; "
            f"set debug_level=3; set debug_file={log}")
    return run_mutt(["-n", "-F", "/dev/null", "-R", "-e", cmds, "-f", "+INBOX"], want, home,
                    program="neomutt")


def sent(log) -> list[str]:
    """The IMAP commands neomutt's debug log shows it sent."""
    text = open(log, errors="replace").read()
    # a write's lines follow its `4> ` (neomutt pipelines commands)
    writes = re.findall(r"\d> (a\d{4} [^\[]*)", text)
    return [ln for w in writes for ln in w.splitlines() if ln]


def test_neomutt_resyncs_with_qresync(imap_preauth, tmp_path):
    srv = imap_preauth
    home = tmp_path / "home"
    home.mkdir()
    (home / "hcache").mkdir()
    subj = subjects(srv.box())
    first = neomutt(srv, home, [f"S<{s}|" for s in subj], tmp_path / "log1")
    assert f"S<{subj[2]}|" in first, first[-2000:]
    one = sent(str(tmp_path / "log1") + "0")
    assert any("ENABLE QRESYNC" in c for c in one), one

    other = srv.imaplib()
    other.select("INBOX")
    other.store("3", "+FLAGS", "(\\Flagged)")
    other.logout()

    flagged, gone = subj[2], subj[4]
    second = neomutt(srv, home, [f"S<{s}|" for s in subj], tmp_path / "log2")
    assert re.search(rf"S<{re.escape(flagged)}\|[^>]*!", second), second[-2000:]
    two = sent(str(tmp_path / "log2") + "0")
    # neomutt 20220429's QRESYNC: EXAMINE (CONDSTORE), then the changes
    # since the MODSEQ its header cache holds, with what vanished
    assert any(re.fullmatch(r'a\d+ (EXAMINE|SELECT) "INBOX" \(CONDSTORE\)', c) for c in two), two
    assert any(re.search(r"UID FETCH 1:8 \(FLAGS\) \(CHANGEDSINCE [1-9]\d* VANISHED\)", c)
               for c in two), two
    # and no fetch of every message's flags
    assert not [c for c in two if re.search(r"FETCH 1:\d+ \(UID FLAGS", c)], two

    # an expunge meanwhile: neomutt no longer shows the message.  (After
    # the VANISHED (EARLIER) neomutt 20220429 logs "QRESYNC failed" and
    # fetches every flag again; it does the same against Dovecot 2.3.)
    other = srv.imaplib()
    other.select("INBOX")
    other.store("5", "+FLAGS", "(\\Deleted)")
    other.expunge()
    other.logout()
    third = neomutt(srv, home, [f"S<{s}|" for s in subj if s != gone], tmp_path / "log3")
    drawn = re.findall(r"S<([^|>\x1b]*)\|", third)
    assert gone not in drawn and subj[5] in drawn, third[-2000:]
