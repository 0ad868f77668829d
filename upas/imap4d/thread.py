"""THREAD and UID THREAD (RFC 5256 3): ORDEREDSUBJECT and REFERENCES.

Threads are built from summary.py's data (Message-ID, References or
In-Reply-To, base subject, sent date: the sort index's columns), in
loops rather than recursion: a reply chain thousands deep must not
exhaust Python's stack."""
from __future__ import annotations

import re
from itertools import groupby
from typing import Callable, NamedTuple

from upas.imap4d import search, summary
from upas.imap4d import parser as p
from upas.imap4d.request import Request
from upas.imap4d.summary import collate


_NUMBER = re.compile(r"\d+")


class Summary(NamedTuple):
    """What threading takes of a message's summary.Summary."""
    date: int
    subject: str
    reply: bool
    msgid: str
    refs: tuple[str, ...]


class Node:
    """A message of a thread (num, its sent date, the rest of its
    Summary), or a dummy (num 0) standing for a message not here."""
    __slots__ = ("num", "seq", "sm", "parent", "children")

    def __init__(self, num: int = 0, seq: int = 0, sm: Summary | None = None):
        self.num, self.seq, self.sm = num, seq, sm
        self.parent: Node | None = None
        self.children: list[Node] = []

    @property
    def dummy(self) -> bool:
        return self.sm is None

    def adopt(self, child: "Node") -> None:
        child.parent = self
        self.children.append(child)


Item = tuple[int, int, Summary]          # (number shown, sequence number, summary)


# ------------------------------------------------------------ ORDEREDSUBJECT

def ordered_subject(items: list[Item]) -> list[Node]:
    """Messages by base subject then sent date; one thread per subject,
    its first message the parent of the rest; threads by their first
    message's sent date (ties: mailbox order)."""
    def subject(it: Item) -> bytes:
        return collate(it[2].subject)
    roots = []
    for _, group in groupby(sorted(items, key=lambda it: (subject(it), it[2].date, it[1])),
                            key=subject):
        nodes = [Node(*it) for it in group]
        for n in nodes[1:]:
            nodes[0].adopt(n)
        roots.append(nodes[0])
    roots.sort(key=lambda n: (n.sm.date, n.seq))
    return roots


# ------------------------------------------------------------ REFERENCES

def _ancestor(a: Node, b: Node) -> bool:
    """b is a or one of a's ancestors."""
    while a is not None:
        if a is b:
            return True
        a = a.parent
    return False


def _link(parent: Node, child: Node) -> None:
    """child under parent unless that makes a loop (RFC 5256 3 step 1)."""
    if _ancestor(parent, child):
        return
    if child.parent is not None:
        child.parent.children.remove(child)
    parent.adopt(child)


def _containers(items: list[Item]) -> list[Node]:
    """Step 1: a container per Message-ID, linked as References say; the
    containers in the order they were made."""
    table: dict[str, Node] = {}
    made: list[Node] = []

    def container(mid: str) -> Node:
        node = table.get(mid)
        if node is None:
            node = table[mid] = Node()
            made.append(node)
        return node
    for num, seq, sm in items:
        node = table.get(sm.msgid) if sm.msgid else None
        if node is not None and node.dummy:          # (A) a reference, now here
            node.num, node.seq, node.sm = num, seq, sm
        else:                                        # new, or a duplicate id: unique
            node = Node(num, seq, sm)
            made.append(node)
            if sm.msgid:
                table.setdefault(sm.msgid, node)
        prev = None
        for ref in sm.refs:                          # (B) the chain of references
            c = container(ref)
            if prev is not None and c.parent is None and c is not node:
                _link(prev, c)
            prev = c
        if node.parent is not None:                  # (C) the last reference: the parent
            node.parent.children.remove(node)
            node.parent = None
        if prev is not None:
            _link(prev, node)
    return made


def _prune(roots: list[Node]) -> list[Node]:
    """Step 4: dummies without children go; a dummy's children take its
    place, except at the top where a dummy keeps two or more."""
    for n in reversed(_preorder(roots)):             # children before parents
        if not n.children:
            continue
        kids: list[Node] = []
        for c in n.children:
            kids += c.children if c.dummy else [c]
        for c in kids:
            c.parent = n
        n.children = kids
    out: list[Node] = []
    for r in roots:
        if r.dummy and len(r.children) < 2:
            out += r.children
        else:
            out.append(r)
    for r in out:
        r.parent = None
    return out


def _preorder(roots: list[Node]) -> list[Node]:
    out, stack = [], list(reversed(roots))
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(n.children))
    return out


def _by_subject(roots: list[Node]) -> list[Node]:
    """Step 5: top-level threads of one base subject gathered."""
    def first(r: Node) -> Summary:
        return r.children[0].sm if r.dummy else r.sm

    def reply(r: Node) -> bool:
        return not r.dummy and r.sm.reply
    table: dict[bytes, Node] = {}
    subjects = [collate(first(r).subject) for r in roots]
    for r, subj in zip(roots, subjects):
        if not subj:
            continue
        c = table.get(subj)
        if c is None or (r.dummy and not c.dummy) or (reply(c) and not reply(r)):
            table[subj] = r
    merged: set[int] = set()                 # dummies emptied into another
    made: list[Node] = []
    for r, subj in zip(roots, subjects):
        c = table.get(subj) if subj else None
        if c is None or c is r:
            continue
        if c.dummy and r.dummy:
            for k in r.children:
                c.adopt(k)
            merged.add(id(r))
        elif c.dummy or (reply(r) and not reply(c)):
            c.adopt(r)
        else:
            d = table[subj] = Node()
            d.adopt(c)
            d.adopt(r)
            made.append(d)
    return [r for r in roots + made if r.parent is None and id(r) not in merged]


def _sort(roots: list[Node]) -> list[Node]:
    """Steps 6 and 7: siblings, then threads, by sent date (ties: mailbox
    order); a dummy by its first child."""
    key: dict[int, tuple[int, int]] = {}
    by_key = lambda c: key[id(c)]                    # noqa: E731
    for n in reversed(_preorder(roots)):
        if n.children:
            n.children.sort(key=by_key)
        key[id(n)] = key[id(n.children[0])] if n.dummy else (n.sm.date, n.seq)
    return sorted(roots, key=lambda r: key[id(r)])


def references(items: list[Item]) -> list[Node]:
    made = _containers(items)
    roots = [n for n in made if n.parent is None]          # step 2
    return _sort(_by_subject(_prune(roots)))


ALGORITHMS: dict[str, Callable[[list[Item]], list[Node]]] = {
    "ORDEREDSUBJECT": ordered_subject, "REFERENCES": references}


def render(root: Node) -> str:
    """A thread as `(...)`: a message and its only child side by side, a
    message's several children each in parentheses (RFC 5256 4)."""
    if not root.children:                   # most threads: one message
        return f"({root.num})"
    out = ["("]
    stack: list[Node | str] = [")", root]
    while stack:
        n = stack.pop()
        if isinstance(n, str):
            out.append(n)
            continue
        if not n.dummy:
            out.append(str(n.num))
        kids = n.children
        if len(kids) == 1 and not n.dummy:
            out.append(" ")
            stack.append(kids[0])
        elif kids:
            if not n.dummy:
                out.append(" ")
            for k in reversed(kids):
                stack += [")", k, "("]
    return "".join(out)


# ------------------------------------------------------------ the command

def parse_thread(r: p.Reader):
    alg = r.atom().upper()
    if alg not in ALGORITHMS:
        raise p.ParseError("unknown thread algorithm")
    r.sp()
    charset = r.astring().decode("ascii", "replace")
    r.sp()
    return alg, charset, p.search_keys(r)


def cmd_thread(s, req: Request) -> None:
    alg, charset, key = req.args
    if search.charset_refused(s, req, charset):
        return
    s.report(expunges=req.uid, uid=req.uid)
    box, site = s.box, s.opts.site
    found = search.matching(s, key)

    def compute() -> str:
        """The threads with each message shown as its place in found
        (mailbox order, so the ties break alike)."""
        sums = map(Summary._make, zip(*summary.columns(box, found, site, Summary._fields)))
        places = range(1, len(found) + 1)
        return "".join(render(t) for t in ALGORITHMS[alg](list(zip(places, places, sums))))
    text = summary.kept_answer(box, found, "thread:" + alg, compute)
    if req.uid or len(found) != box.count():        # else the places are the numbers
        shown = list(map(str, search.numbers(box, found, req.uid)))
        text = _NUMBER.sub(lambda m: shown[int(m.group()) - 1], text)
    s.untagged("THREAD" + (" " + text if text else ""))
    s.ok(req)
