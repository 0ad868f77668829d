"""IMAP SEARCH programs nested up to 3000 deep by `(`, NOT or OR
(fuzz/nesting.py), through the Framer and the search grammar: only
ParseError may come out, and what parses is no deeper than
parser.MAX_SEARCH_NESTING allows."""
from fuzz.nesting import search_from
from upas.imap4d import parser as p


def target(data: bytes) -> None:
    f = p.Framer(max_line=1 << 16, max_literal=4096)
    f.feed(search_from(data))
    ev = f.next_event()
    if not isinstance(ev, p.CommandEvent):
        return
    r = p.Reader(ev.parts)
    try:
        p.command_head(r)
        r.sp()
        _, key, _ = p.search_program(r)
    except p.ParseError:
        return
    # the nesting, the program's own AND above it, the key at the bottom
    assert depth(key) <= p.MAX_SEARCH_NESTING + 2


def depth(key: p.Key) -> int:
    """The key tree's depth, without recursion."""
    most, todo = 0, [(key, 1)]
    while todo:
        k, d = todo.pop()
        most = max(most, d)
        todo.extend((x, d + 1) for x in k.kids)
    return most
