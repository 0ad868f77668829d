"""Reading the files of many messages at once (FETCH, SEARCH).

Each message is still answered by the same code as before (fetch.item,
search.Matcher), but a batch of messages is first evaluated
*speculatively*: while `box.speculative` is set, a message file not read
yet is not read but asked for by raising Need, and so are the children of
a MIME part.  The runner gathers what every message of the batch lacks,
reads all of it with one pipelined `ns.read_many`, and evaluates again,
until every message's answer is complete.  An answer is thus computed
from exactly the bytes the direct reads would give, at the cost of a few
round trips per batch instead of several per message and MIME part.

A part's children are not found by listing its directory (a listing
makes upasfs stat all 25 files of the part) but by reading `k/mimeheader`
for k = 1, 2, ... until one is missing (see probe_children).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Iterator, TypeVar

if TYPE_CHECKING:
    from upas.imap4d.mailbox import Mailbox, Message

T = TypeVar("T")
R = TypeVar("R")

BATCH = 128          # messages evaluated together
ROUNDS = 12          # speculative rounds before the rest is read directly
PROBE = 3            # children probed per round
READ_AHEAD = 1 << 20  # bytes of each first file asked for ahead (capped by the iounit)
DEFER = object()     # held: a failed probe that does not tell whether the part exists


class Need(BaseException):
    """Files (paths under the message directory) that a speculative
    evaluation lacks.  No paths: it cannot go on speculatively (a read
    failed); the message is then evaluated directly, as before.  Not an
    Exception, so the handlers that turn a vanished message's error into
    NO let it pass."""

    def __init__(self, rels: Iterable[str] = ()):
        super().__init__()
        self.rels = list(rels)


def gather(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """[fn(x) for x in items]; when speculating, what all items lack is
    asked for at once rather than only what the first one lacks."""
    out: list[R] = []
    need: list[str] = []
    for x in items:
        try:
            out.append(fn(x))
        except Need as n:
            if not n.rels:
                raise
            need += n.rels
    if need:
        raise Need(need)
    return out


def once(box: "Mailbox", m: "Message", key: str, fn: Callable[[], R]) -> R:
    """fn(), computed once in a batch for message m (a later speculative
    round reuses the result instead of computing it again)."""
    k = (m.fsnum, ":" + key)             # no file name begins with ":"
    if k not in box.held:
        box.held[k] = fn()
    return box.held[k]              # type: ignore[return-value]


def evaluate(box: "Mailbox", msgs: list["Message"], fn: Callable[["Message"], R],
             first: Callable[["Message"], Iterable[str]] = lambda m: ()
             ) -> Iterator[tuple["Message", R]]:
    """(m, fn(m)) for every message, in order, BATCH messages at a time;
    first(m): files m is known to need (read in the first round).  The
    first round of the next batch is asked for before this batch is
    evaluated, so that upasfs reads it while we compute."""
    batches = [msgs[i:i + BATCH] for i in range(0, len(msgs), BATCH)]
    ahead = _ahead(box, batches[0], first) if batches else None
    try:
        for k, batch in enumerate(batches):
            got, ahead = ahead(), None
            if k + 1 < len(batches):
                ahead = _ahead(box, batches[k + 1], first)
            try:
                for m, rel, data in got:
                    box.hold(m, rel, data)
                results = _batch(box, batch, fn, [(m, r) for m in batch for r in first(m)])
            finally:
                box.held.clear()
                box.speculative = False
            yield from zip(batch, results)
    finally:
        if ahead is not None:
            ahead()                     # the replies must be taken in


def _ahead(box: "Mailbox", batch: list["Message"], first):
    """Send the reads of a batch's first files now; the returned function
    collects them as [(m, rel, data)].  A file that filled the one read
    (bigger than the iounit) is left out: the first round reads it whole."""
    jobs = [(m, r) for m in batch for r in first(m) if not box.has(m, r)]
    if not jobs:
        return lambda: []
    paths = [f"{box.fsdir}/{m.fsnum}/{r}" for m, r in jobs]
    count = min(READ_AHEAD, _iounit(box, paths))
    try:
        finish = box.ns.read_many_begin(paths, count)
    except Exception:
        return lambda: []               # the first round reads them as before

    def collect() -> list:
        try:
            got = finish()
        except Exception:
            return []
        return [(m, r, d) for (m, r), d in zip(jobs, got)
                if d is not None and len(d) < count]
    return collect


def _iounit(box: "Mailbox", paths: list[str]) -> int:
    """The most one read of these files returns (a 9P mount's iounit)."""
    one = box.ns._one_9p_mount(paths)
    client = getattr(one[0], "client", None) if one else None
    return getattr(client, "iounit", READ_AHEAD) if one else READ_AHEAD


def _batch(box: "Mailbox", batch: list["Message"], fn, want) -> list:
    done: dict[int, object] = {}
    pending, direct = list(batch), []
    for _ in range(ROUNDS):
        load(box, want)
        want, todo = [], []
        box.speculative = True
        try:
            for m in pending:
                try:
                    done[id(m)] = fn(m)
                except Need as n:
                    if n.rels:
                        want += [(m, r) for r in n.rels]
                        todo.append(m)
                    else:
                        direct.append(m)
        finally:
            box.speculative = False
        pending = todo
        if not pending:
            break
    for m in pending + direct:
        done[id(m)] = fn(m)
    return [done[id(m)] for m in batch]


# ------------------------------------------------------------ reading

def _probe(rel: str) -> int:
    """k if rel is a probe `.../k/mimeheader`, else 0."""
    parts = rel.split("/")
    return int(parts[-2]) if len(parts) > 1 and parts[-1] == "mimeheader" \
        and parts[-2].isdigit() else 0


def load(box: "Mailbox", want: list[tuple["Message", str]]) -> None:
    """Read the wanted files, those of one message together and in order,
    all in one pipelined read_many.  A probe is read even if known (the
    one before the next probes: see probe_children)."""
    per: dict[int, tuple["Message", list[str]]] = {}
    for m, rel in want:
        if _probe(rel) or not box.has(m, rel):
            rels = per.setdefault(id(m), (m, []))[1]
            if rel not in rels:
                rels.append(rel)
    jobs = [(m, r) for m, rels in per.values() for r in rels]
    if not jobs:
        return
    paths = [f"{box.fsdir}/{m.fsnum}/{rel}" for m, rel in jobs]
    got = box.ns.read_many(paths, None)       # whole files
    found = {(id(m), rel) for (m, rel), data in zip(jobs, got) if data is not None}
    for (m, rel), data in zip(jobs, got):
        if data is not None:
            box.hold(m, rel, data)
        elif _probe(rel) > 1 and (id(m), _sibling(rel, -1)) in found:
            box.hold(m, rel, None)      # no such part: its elder was just there
        else:
            box.hold(m, rel, DEFER if _probe(rel) else None)


def _sibling(rel: str, d: int) -> str:
    """The probe of the part d places after (before) the one rel probes."""
    parts = rel.split("/")
    parts[-2] = str(int(parts[-2]) + d)
    return "/".join(parts)


def probe_children(box: "Mailbox", m: "Message", rel: str) -> list[int]:
    """The MIME part numbers under `rel` (of a multipart or message part,
    which has at least one), from the probes read so far; raises Need for
    the next ones, from the last part found on: a part is taken to be
    missing only if the one before it was read in the same batch (a
    message deleted meanwhile is evaluated directly instead)."""
    base = f"{rel}/" if rel else ""
    k = 1
    while True:
        name = f"{base}{k}/mimeheader"
        if name not in m.cache:
            got = box.held.get((m.fsnum, name), Need)
            if got is Need:
                raise Need(f"{base}{j}/mimeheader" for j in range(max(k - 1, 1), k + PROBE))
            if got is None:
                return list(range(1, k))
            raise Need()                # DEFER: cannot tell
        k += 1
