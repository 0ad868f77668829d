"""pop3's login reads upasfs's `summary` (issue 16): every message's
number, digest and sizes in one read, where Plan 9's pop3 reads digest,
rawheader, lines and the stat of raw of each message (docs/spec/servers.md
§2.7).  The sizes must be those Plan 9's reads give: computed here from
those files, read one by one from the same real upasfs.
"""
import os

from upas.mail.fsview import FsView
from upas.pop3.mailbox import FsMailbox
from tests.fixtures.tracedns import MESSAGE_FILE, Traced


def test_a_login_reads_the_summary_and_no_message_file(upasfs, monkeypatch):
    for name in ("user", "USER", "LOGNAME"):
        monkeypatch.setenv(name, "glenda")
    ns = Traced("glenda")
    ns.bind_dir("/mail/box", os.path.join(upasfs.mailroot, "box"))
    ns.mount("/mail/fs", upasfs.addr)
    box = FsMailbox(FsView.open(ns, "/mail/box/glenda/mbox"))
    assert "/mail/fs/mbox/summary" in ns.seen
    assert [p for p in ns.seen if MESSAGE_FILE.match(p)] == []

    with upasfs.client() as fs:
        nums = sorted(int(n) for n in fs.readdir_names("mbox") if n.isdigit())
        assert [m.fsnum for m in box.messages] == nums
        for m in box.messages:
            d = f"mbox/{m.fsnum}"
            raw = fs.stat(f"{d}/raw").length
            size = raw + fs.read(f"{d}/rawheader").count(b"\n") + 1 + int(fs.read(f"{d}/lines"))
            assert (m.digest, m.size) == (fs.read(f"{d}/digest").decode(), size), m.fsnum
            assert box._raw_len[m.fsnum] == raw
