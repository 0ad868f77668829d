"""imap4d's digest cache (fetchcache.py): FETCH's RFC822.SIZE, ENVELOPE, BODY
and BODYSTRUCTURE kept in `<mailbox>.imap4d.imp`, keyed by message digest.

Real imap4d sessions over a real posted upasfs, on the testdata messages,
generated bench messages and MIME shapes: the answers of a cold session
(no file), a warm one (every answer from the file) and an uncached one
(the file foreign, hence ignored) are byte for byte the same; a record in
the file is what a warm session answers (a hit reads no message); torn,
corrupt, stale and foreign files; concurrent sessions; compaction."""
from __future__ import annotations

import threading
import zlib
from pathlib import Path

import pytest

from tests.test_imap_prefetch import mixed_mbox
from upas import ns as nsmod
from upas.imap4d import fetchcache as dc

ITEMS = b"(UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)"   # FLAGS: \\Recent differs
BODY = b"(BODY RFC822.SIZE)"


@pytest.fixture(scope="module")
def mbox(tmp_path_factory) -> bytes:
    return mixed_mbox(tmp_path_factory, 40, 5)


@pytest.fixture
def server(imap_preauth, mbox):
    imap_preauth.box().write_bytes(mbox)
    return imap_preauth


def cache_file(server) -> Path:
    return server.box().with_name("mbox.imap4d.imp")


def fetch_all(server, what: bytes = ITEMS) -> list[bytes]:
    c = server.connect()
    try:
        c.cmd(b"s EXAMINE INBOX")
        r = c.cmd(b"f FETCH 1:* " + what)
        assert r[-1] == b"f OK FETCH completed\r\n", r[-3:]
        c.cmd(b"l LOGOUT")
    finally:
        c.close()
    return r


def records(path: Path) -> dict[str, dict[str, bytes]]:
    data = path.read_bytes()
    state, entries, torn = dc.parse(data, data[:data.index(b"\n") + 1])
    assert state == "ok" and not torn
    return entries


def test_cold_warm_and_uncached_answers_are_the_same(server):
    assert not cache_file(server).exists()
    cold = fetch_all(server)
    assert len(cold) > 50
    kept = records(cache_file(server))
    assert len(kept) == len(cold) - 1
    assert all(set(kv) == {"RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE"} for kv in kept.values())
    warm = fetch_all(server)
    assert warm == cold
    c = server.connect()
    listed = c.cmd(b'l LIST "" *')
    c.close()
    assert listed[-1].startswith(b"l OK") and not any(b"idx" in x for x in listed)
    body = fetch_all(server, BODY)                  # BODY: added to the records
    assert all("BODY" in kv for kv in records(cache_file(server)).values())
    assert fetch_all(server, BODY) == body
    cache_file(server).write_bytes(b"imap internal mailbox description\nnot a cache\n")
    assert fetch_all(server) == cold                # foreign: ignored ...
    assert fetch_all(server, BODY) == body
    assert cache_file(server).read_bytes() == b"imap internal mailbox description\nnot a cache\n"


def test_a_hit_is_answered_from_the_record(server):
    cold = fetch_all(server)
    path = cache_file(server)
    data = path.read_bytes()
    head = data[:data.index(b"\n") + 1]
    digest = next(iter(records(path)))
    marker = b'ENVELOPE ("kept" NIL NIL NIL NIL NIL NIL NIL NIL NIL)'
    path.write_bytes(data + dc.record(digest, "ENVELOPE", marker))   # the last record wins
    warm = fetch_all(server)
    diffs = [(c, w) for c, w in zip(cold, warm) if c != w]
    assert len(warm) == len(cold) and len(diffs) == 1
    assert marker in diffs[0][1] and marker not in diffs[0][0]
    assert dc.parse(path.read_bytes(), head)[0] == "ok"


def test_torn_tail_is_ignored_and_rewritten(server):
    cold = fetch_all(server)
    path = cache_file(server)
    data = path.read_bytes()
    whole = len(records(path))
    path.write_bytes(data[:len(data) * 2 // 3])     # a writer killed mid-record
    head = data[:data.index(b"\n") + 1]
    state, left, torn = dc.parse(path.read_bytes(), head)
    assert state == "ok" and torn and 0 < len(left) < whole
    assert fetch_all(server) == cold                # the rest computed again
    assert len(records(path)) == whole              # and the file rewritten whole


def test_corrupt_record_ends_the_reading(server):
    cold = fetch_all(server)
    path = cache_file(server)
    data = bytearray(path.read_bytes())
    i = data.index(b"ENVELOPE (") + 12
    data[i] ^= 0x20                                 # crc no longer matches
    path.write_bytes(bytes(data))
    head = bytes(data[:data.index(b"\n") + 1])
    assert dc.parse(bytes(data), head)[2]           # torn from there on
    assert fetch_all(server) == cold
    assert records(path)


def test_stale_code_version_is_replaced(server):
    cold = fetch_all(server)
    path = cache_file(server)
    data = path.read_bytes()
    old = dc.MAGIC + b"0000000000000000 imap.test\n"
    wrong = b'ENVELOPE (NIL "stale" NIL NIL NIL NIL NIL NIL NIL NIL)'
    path.write_bytes(old + b"".join(dc.record(d, "ENVELOPE", wrong) for d in records(path)))
    assert fetch_all(server) == cold                # not trusted
    assert path.read_bytes().startswith(data[:data.index(b"\n") + 1])
    assert b'"stale"' not in path.read_bytes()


def test_concurrent_cold_sessions(server):
    want = fetch_all(server, b"(UID RFC822.SIZE)")  # no cache items but the size
    cache_file(server).unlink()
    out: list[list[bytes]] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            out.append(fetch_all(server))
        except BaseException as e:                  # noqa: BLE001 -- reported below
            errors.append(e)
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(out) == 4 and all(r == out[0] for r in out)
    assert len(records(cache_file(server))) == len(want) - 1
    assert fetch_all(server) == out[0]


def test_compaction_keeps_only_live_digests(tmp_path):
    box = tmp_path / "box" / "glenda"
    box.mkdir(parents=True)
    (box / "mbox").write_bytes(b"")
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box", str(tmp_path / "box"))
    digests = ["%040x" % i for i in range(400)]
    c = dc.FetchCache(ns, "/mail/box/glenda/mbox", "imap.test")
    c.refresh()
    for d in digests:
        c.put(d, "ENVELOPE", b"ENVELOPE " + b"x" * 300)
    c.flush(set(digests))
    path = box / "mbox.imap4d.imp"
    assert len(records(path)) == 400
    big = path.stat().st_size
    live = set(digests[:10])
    c2 = dc.FetchCache(ns, "/mail/box/glenda/mbox", "imap.test")
    c2.refresh()
    assert c2.get(digests[0], "ENVELOPE") == b"ENVELOPE " + b"x" * 300
    c2.put(digests[0], "BODY", b"BODY x")        # a write: the file is mostly dead
    c2.flush(live)
    assert set(records(path)) == live and path.stat().st_size < big // 10
    c2.put(digests[1], "BODY", b"BODY y")        # small now: appended
    c2.flush(live)
    assert records(path)[digests[1]] == {"ENVELOPE": b"ENVELOPE " + b"x" * 300, "BODY": b"BODY y"}


def test_a_cache_under_its_old_name_is_taken_over(tmp_path):
    """Before issue 15 the file was `<mailbox>.idx.imp`: the first session
    to open the cache gives it the new name, answers and all (no orphan
    of the user's headers is left behind)."""
    box = tmp_path / "box" / "glenda"
    box.mkdir(parents=True)
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box", str(tmp_path / "box"))
    head = dc.header_line("imap.test")
    (box / "mbox.idx.imp").write_bytes(head + dc.record("1" * 40, "ENVELOPE", b"one"))
    c = dc.FetchCache(ns, "/mail/box/glenda/mbox", "imap.test")
    c.refresh()
    assert c.get("1" * 40, "ENVELOPE") == b"one"
    assert not (box / "mbox.idx.imp").exists() and (box / "mbox.imap4d.imp").exists()


def test_record_checksums():
    r = dc.record("a" * 40, "ENVELOPE", b"v\r\nw")
    assert r[:1] == b"R" and int(r[9:17], 16) == zlib.crc32(r[17:-1])
    head = dc.header_line("imap.test")
    assert dc.parse(head + r, head) == ("ok", {"a" * 40: {"ENVELOPE": b"v\r\nw"}}, False)
    assert dc.parse(head + r[:-1], head)[2]
    assert dc.parse(b"something else\n" + r, head)[0] == "foreign"


def test_small_fetch_in_a_fresh_session_answers_directly(server):
    c = server.connect()
    c.cmd(b"s EXAMINE INBOX")
    small = c.cmd(b"f FETCH 1:3 (ENVELOPE)")
    assert small[-1] == b"f OK FETCH completed\r\n" and len(small) == 4
    assert not cache_file(server).exists()          # a few: not worth reading the file
    big = c.cmd(b"g FETCH 1:* (ENVELOPE)")
    assert cache_file(server).exists()
    again = c.cmd(b"h FETCH 1:3 (ENVELOPE)")        # read now: used for a few too
    assert again[:3] == small[:3] == big[:3]
    c.close()


def test_records_others_append_are_read_from_where_we_stopped(tmp_path):
    box = tmp_path / "box" / "glenda"
    box.mkdir(parents=True)
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box", str(tmp_path / "box"))
    a = dc.FetchCache(ns, "/mail/box/glenda/mbox", "imap.test")
    b = dc.FetchCache(ns, "/mail/box/glenda/mbox", "imap.test")
    a.refresh()
    a.put("1" * 40, "ENVELOPE", b"one")
    a.flush({"1" * 40})
    b.refresh()
    assert b.get("1" * 40, "ENVELOPE") == b"one"
    size = b.size
    a.put("2" * 40, "ENVELOPE", b"two")
    a.flush({"1" * 40, "2" * 40})
    path = box / "mbox.imap4d.imp"
    with open(path, "r+b") as f:                    # b re-reads only the tail:
        f.write(b"X")                               # a spoiled header is not seen
    b.refresh()
    assert b.get("2" * 40, "ENVELOPE") is None and b.state == "foreign"
    with open(path, "r+b") as f:
        f.write(b"u")
    c = dc.FetchCache(ns, "/mail/box/glenda/mbox", "imap.test")
    c.refresh()
    c.size, c.stamp = size, (ns.stat(c.path).qid, 0, size)     # as b before
    c.entries = {}
    c.refresh()
    assert c.get("2" * 40, "ENVELOPE") == b"two" and c.get("1" * 40, "ENVELOPE") is None


def test_the_file_is_the_users_only(server):
    fetch_all(server)
    assert cache_file(server).stat().st_mode & 0o077 == 0     # headers of mail inside


def test_only_digests_are_kept(tmp_path):
    (tmp_path / "box" / "glenda").mkdir(parents=True)
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box", str(tmp_path / "box"))
    c = dc.FetchCache(ns, "/mail/box/glenda/mbox", "imap.test")
    c.refresh()
    c.put("not a digest", "ENVELOPE", b"x")        # a foreign fs's name: never written
    c.put("b" * 40, "ENVELOPE", b"y")
    c.flush({"b" * 40, "not a digest"})
    assert records(tmp_path / "box" / "glenda" / "mbox.imap4d.imp") == \
        {"b" * 40: {"ENVELOPE": b"y"}}


def test_rename_moves_the_cache_and_delete_removes_it(server):
    box = server.box()
    other = box.with_name("keep")
    other.write_bytes(box.read_bytes())
    c = server.connect()
    try:
        c.cmd(b"s EXAMINE keep")
        assert c.cmd(b"f FETCH 1:* " + ITEMS)[-1] == b"f OK FETCH completed\r\n"
        c.cmd(b"u UNSELECT")
        assert other.with_name("keep.imap4d.imp").exists()
        assert c.cmd(b"r RENAME keep kept")[-1] == b"r OK RENAME completed\r\n"
        assert not other.with_name("keep.imap4d.imp").exists()
        moved = other.with_name("kept.imap4d.imp")
        assert records(moved)                   # the same records, under the new name
        assert c.cmd(b"d DELETE kept")[-1] == b"d OK kept DELETE completed\r\n"
        assert not moved.exists()
        c.cmd(b"l LOGOUT")
    finally:
        c.close()


def test_an_append_caught_half_written_is_read_again_not_taken_for_torn(tmp_path, monkeypatch):
    from upas.mail import digestcache
    (tmp_path / "box" / "glenda").mkdir(parents=True)
    ns = nsmod.Namespace("glenda")
    ns.bind_dir("/mail/box", str(tmp_path / "box"))
    a = dc.FetchCache(ns, "/mail/box/glenda/mbox", "imap.test")
    a.refresh()
    a.put("1" * 40, "ENVELOPE", b"one")
    a.flush({"1" * 40})
    path = tmp_path / "box" / "glenda" / "mbox.imap4d.imp"
    rec = dc.record("2" * 40, "ENVELOPE", b"two")
    with open(path, "ab") as f:
        f.write(rec[:10])                   # another session's write, half done
    rest = rec[10:]

    def the_writer_finishes(secs):
        with open(path, "ab") as f:
            f.write(rest)
    monkeypatch.setattr(digestcache.time, "sleep", the_writer_finishes)
    b = dc.FetchCache(ns, "/mail/box/glenda/mbox", "imap.test")
    b.refresh()
    assert not b.torn and b.get("2" * 40, "ENVELOPE") == b"two"
    with open(path, "ab") as f:             # a crash's tail stays torn
        f.write(rec[:10])
    monkeypatch.setattr(digestcache.time, "sleep", lambda secs: None)
    b.refresh()
    assert b.torn
