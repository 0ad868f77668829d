"""IMAP framing and grammar: Framer -> Reader -> command head, fetch
attributes, search programs, SORT and THREAD arguments.  Only ParseError
may come out."""
from upas.imap4d import parser as p
from upas.imap4d import sort, thread

MAX_LITERAL = 4096


def target(data: bytes) -> None:
    f = p.Framer(max_line=1024, max_literal=MAX_LITERAL)
    f.feed(data)
    for _ in range(len(data) + 2):
        ev = f.next_event()
        if ev is None:
            return
        if isinstance(ev, p.LiteralEvent):
            f.accept() if ev.size <= MAX_LITERAL else f.refuse()
        elif isinstance(ev, p.CommandEvent):
            _grammar(ev.parts)
    raise AssertionError("Framer made no progress")


def _grammar(parts: list[bytes]) -> None:
    for parse in (p.command_head, p.fetch_atts, p.search_program, sort.parse_sort,
                  thread.parse_thread):
        r = p.Reader(list(parts))
        try:
            if parse is not p.command_head:
                p.command_head(r)
                r.atom()             # the command's first argument, if any
            parse(r)
        except p.ParseError:
            pass
