"""pop3's sizes by digest (`<mailbox>.pop3.imp`, upas/pop3/sizecache.py):
a later session reads only each message's digest for the messages the
file knows; a corrupt, torn or foreign file is ignored, never trusted;
concurrent sessions and new mail leave it right.  End to end with the real
pop3, upasfs and factotum; the file's own rules on a local namespace."""
from __future__ import annotations

import threading

from tests.test_pop3_server import GLENDA, entries, expected_size, login, wire
from upas import ns as nsmod
from upas.mail import digestcache
from upas.pop3 import sizecache
from upas.pop3.sizecache import HEADER, KEY, MAGIC, SizeCache


def listing(pop3) -> tuple[bytes, bytes, bytes]:
    """STAT, LIST and UIDL of one session of glenda's."""
    c = pop3.connect()
    login(c, GLENDA)
    stat = c.cmd(b"STAT")
    c.send(b"LIST")
    lst = c.multi()
    c.send(b"UIDL")
    uidl = c.multi()
    c.cmd(b"QUIT")
    return stat, lst, uidl


def expected_list(pop3) -> bytes:
    sizes = [expected_size(r) for _, r in entries(pop3.box("glenda"))]
    return (f"+OK +{len(sizes)} messages ({sum(sizes)} octets)\r\n".encode()
            + b"".join(b"%d %d\r\n" % (i, s) for i, s in enumerate(sizes, 1)) + b".\r\n")


def parse(data: bytes) -> dict[bytes, tuple[int, int]]:
    state, entries, _ = digestcache.parse(data, MAGIC, HEADER)
    assert state == "ok"
    return {d.encode(): tuple(int(x) for x in kv[KEY].split()) for d, kv in entries.items()}


def records(path) -> dict[bytes, tuple[int, int]]:
    return parse(path.read_bytes())


def record(digest: str, raw_len: int, size: int) -> bytes:
    return digestcache.record(digest, KEY, b"%d %d" % (raw_len, size))


def test_first_session_writes_second_reads(pop3_factory):
    pop3 = pop3_factory()
    cache = pop3.box("glenda", "mbox.pop3.imp")
    assert not cache.exists()
    first = listing(pop3)
    assert first[1] == expected_list(pop3)
    got = records(cache)
    msgs = entries(pop3.box("glenda"))
    assert {d: s for d, (_, s) in got.items()} == \
        {d.encode(): expected_size(r) for d, r in msgs}
    assert cache.stat().st_mode & 0o777 == 0o600
    before = cache.read_bytes()
    assert listing(pop3) == first            # warm: the same bytes
    assert cache.read_bytes() == before      # nothing new: not written
    c = pop3.connect()
    login(c, GLENDA)
    for i, (_, raw) in enumerate(msgs, 1):
        assert c.cmd(b"RETR %d" % i) == b"+OK\r\n"
        assert c.multi() == wire(raw)


def test_a_hit_is_used_and_a_miss_read(pop3_factory):
    """A record the file has is believed (the digest names the bytes); a
    message it lacks is read and added."""
    pop3 = pop3_factory()
    cache = pop3.box("glenda", "mbox.pop3.imp")
    msgs = entries(pop3.box("glenda"))
    digest, raw = msgs[0]
    cache.write_bytes(HEADER + record(digest, len(raw), 12345))
    stat, lst, _ = listing(pop3)
    assert lst.split(b"\r\n")[1] == b"1 12345"
    assert lst.split(b"\r\n")[2] == b"2 %d" % expected_size(msgs[1][1])
    assert len(records(cache)) == len(msgs)


def test_corrupt_records_and_torn_tail_are_ignored(pop3_factory):
    pop3 = pop3_factory()
    cache = pop3.box("glenda", "mbox.pop3.imp")
    listing(pop3)
    good = cache.read_bytes()
    lines = good.split(b"\n")
    d0 = lines[1][17:57]
    # a record whose check fails (its size changed) ends the reading;
    # and a tail torn mid-record
    lines[1] = lines[1][:-1] + b"9"
    torn = b"\n".join(lines[:-1]) + b"\n" + lines[2][:30]
    cache.write_bytes(torn)
    state, left, was_torn = digestcache.parse(torn, MAGIC, HEADER)
    assert state == "ok" and was_torn and d0.decode() not in left
    assert listing(pop3)[1] == expected_list(pop3)
    again = records(cache)                   # rewritten whole, the lost records back
    assert d0 in again and again == parse(good)


def test_stale_file_is_replaced_and_foreign_one_left_alone(pop3_factory):
    pop3 = pop3_factory()
    cache = pop3.box("glenda", "mbox.pop3.imp")
    digest, raw = entries(pop3.box("glenda"))[0]
    cache.write_bytes(MAGIC + b"999\n" + record(digest, len(raw), 1))   # another format
    assert listing(pop3)[1] == expected_list(pop3)
    assert cache.read_bytes().startswith(HEADER)
    assert records(cache)[digest.encode()][1] == expected_size(raw)
    foreign = b"not ours\n" + record(digest, len(raw), 1)
    cache.write_bytes(foreign)
    assert listing(pop3)[1] == expected_list(pop3)
    assert cache.read_bytes() == foreign


def test_new_mail_is_added_and_concurrent_sessions_agree(pop3_factory):
    pop3 = pop3_factory()
    cache = pop3.box("glenda", "mbox.pop3.imp")
    listing(pop3)
    with open(pop3.box("glenda"), "ab") as f:
        f.write(b"From bob Thu Nov 26 12:00:00 EST 2026\nSubject: late\n\n.dot\nx\n")
    want = expected_list(pop3)
    results: list = []

    def session() -> None:
        results.append(listing(pop3)[1])
    threads = [threading.Thread(target=session) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [want] * 4
    got = records(cache)
    assert set(got) == {d.encode() for d, _ in entries(pop3.box("glenda"))}
    assert listing(pop3)[1] == want


def test_compaction_drops_gone_messages(tmp_path, monkeypatch):
    monkeypatch.setattr(digestcache, "SLACK", 2)
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box/glenda", str(tmp_path))
    path = sizecache.cache_path("/mail/box/glenda/mbox", "glenda")
    assert path == "/mail/box/glenda/mbox.pop3.imp"
    c = SizeCache(ns, path)
    assert c.get("a" * 40) is None          # no file: every message a miss
    for i in range(6):
        c.add("%040d" % i, 10 + i, 20 + i)
    c.add("x" * 40, 1, 1)                   # not a digest: not kept
    c.save({"%040d" % i for i in range(6)})
    assert len(records(tmp_path / "mbox.pop3.imp")) == 6
    c = SizeCache(ns, path)
    assert c.get("%040d" % 5) == (15, 25)
    c.add("%040d" % 6, 16, 26)
    c.save({"%040d" % i for i in (5, 6)})   # 5 of 7 gone: rewritten
    assert records(tmp_path / "mbox.pop3.imp") == {b"%040d" % 5: (15, 25),
                                                   b"%040d" % 6: (16, 26)}
    assert not (tmp_path / "mbox.pop3.imp.tmp").exists()
    # only the user's own mailboxes have one
    assert sizecache.cache_path("/mail/box/bob/mbox", "glenda") is None
    assert sizecache.cache_path("/tmp/mbox", "glenda") is None
