"""MIME parsing of generated hostile messages (fuzz/nesting.py): up to
3000 levels of multipart/rfc822 nesting, or 30000 parts, from a few bytes.
The tree stays within mime.MAX_DEPTH and MAX_PARTS, the part ids are what
count_ids says, and every file of the deepest and the last parts can be
made."""
from fuzz.nesting import message_from
from upas.mail import mime


def target(data: bytes) -> None:
    buf = b"From fuzz Thu Jan  1 00:00:00 2026\n" + message_from(data)
    ids = mime.Ids()
    top = mime.parse_message(buf, 0, len(buf), ids, "1")
    assert ids.last <= mime.MAX_PARTS
    assert mime.count_ids(buf, 0, len(buf)) == ids.last
    deepest, depth, todo, n = top, 0, [(top, 0)], 0
    while todo:                         # no recursion: the check must not need it
        part, d = todo.pop()
        n += 1
        assert d <= mime.MAX_DEPTH
        if d > depth:
            deepest, depth = part, d
        todo.extend((p, d + 1) for p in part.parts)
    assert n == ids.last
    for part in [top, deepest] + top.parts[-1:]:
        for name in mime.FILES:
            part.file(name)
            part.length(name)
