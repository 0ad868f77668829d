"""Two batches are under way at once (prefetch.evaluate's lanes): the reads
of one batch's round are in flight while the other batch is evaluated, so
upasfs reads while imap4d computes.  The answers stay those of the direct
reads, also when a file is longer than one read, and a FETCH stopped
early leaves no reply unread on the connection."""
from __future__ import annotations

from upas.imap4d import fetch, prefetch
from upas.imap4d import parser as p
from tests.test_imap_prefetch import _fetch_batched, _fetch_direct, mbox, views  # noqa: F401

ATTS = b"(UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)"


def _spy(box, log):
    """Record the ns calls of a view: ("begin"|"read", number of files)."""
    begin, many = box.ns.read_many_begin, box.ns.read_many

    def read_many_begin(paths, count):
        log.append(("begin", len(paths), {int(x.split("/")[4]) for x in paths}))
        return begin(paths, count)

    def read_many(paths, count=None):
        log.append(("read", len(paths), count))
        return many(paths, count)
    box.ns.read_many_begin, box.ns.read_many = read_many_begin, read_many


def test_next_batch_is_asked_for_before_this_one_is_answered(views):
    direct, batched = views
    atts = p.fetch_atts(p.Reader([ATTS]))
    want = _fetch_direct(direct, atts)
    log: list = []
    _spy(batched, log)
    first = fetch.first_files(atts)
    files = prefetch.Files(batched.view)

    def one(m):
        log.append(("answer", m.fsnum))
        return b" ".join(files.gather(lambda a: fetch.item(files, m, a, "imap.test"), atts, b""))
    got = [r for _, r in prefetch.evaluate(files, batched.msgs, one, first)]
    assert got == want
    begins = [i for i, e in enumerate(log) if e[0] == "begin"]
    answers = [i for i, e in enumerate(log) if e[0] == "answer"]
    assert log[begins[0]][1] == 2 * prefetch.BATCH       # rawheader and rawbody
    assert log[begins[1]][1] == 2 * prefetch.BATCH       # ... of the next batch
    # the second batch's reads went out before the first answer was computed
    assert begins[1] < answers[0]
    # later rounds too: while a round's reads are in flight, messages of
    # another batch are answered
    overlapped = 0
    for k, i in enumerate(begins[2:], 2):
        mine = log[i][2]
        j = next((b for b in begins[k + 1:] if log[b][2] & mine), len(log))
        overlapped += any(e[0] == "answer" and e[1] not in mine for e in log[i:j])
    assert overlapped >= (len(begins) - 2) // 2 > 0


def test_files_longer_than_one_read_are_read_whole(views, monkeypatch):
    direct, batched = views
    monkeypatch.setattr(prefetch, "_iounit", lambda box: 300)
    atts = p.fetch_atts(p.Reader([ATTS]))
    want = _fetch_direct(direct, atts)
    plain = prefetch.Files(direct.view)
    assert any(len(plain.read(m, "rawbody")) > 300 for m in direct.msgs)
    assert _fetch_batched(batched, atts) == want


def test_a_fetch_stopped_early_leaves_the_connection_clean(views):
    direct, batched = views
    atts = p.fetch_atts(p.Reader([ATTS]))
    want = _fetch_direct(direct, atts)

    files = prefetch.Files(batched.view)

    def one(m):
        return b" ".join(files.gather(lambda a: fetch.item(files, m, a, "imap.test"), atts, b""))
    it = prefetch.evaluate(files, batched.msgs, one, fetch.first_files(atts))
    assert next(it)[1] == want[0]
    it.close()                  # the next batch's reads were in flight
    assert files.held == {}
    assert _fetch_batched(batched, atts) == want
