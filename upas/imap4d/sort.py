"""SORT and UID SORT (RFC 5256), with SORT=DISPLAY's keys (RFC 5957) and
ESORT's RETURN options (RFC 5267).

The messages the search keys match are ordered by the criteria in turn,
each a stable sort from the last criterion to the first, so that ties
keep mailbox order (RFC 5256: the final tie-breaker is the sequence
number, never reversed).  The data compared come from summary.py (kept
by digest: no message is read again)."""
from __future__ import annotations

from typing import Callable

from upas.imap4d import esearch, search, summary
from upas.imap4d import parser as p
from upas.imap4d.mailbox import Message
from upas.imap4d.request import Request
from upas.imap4d.summary import Summary, collate, collate_unicode

# sort key -> what it compares of a message's Summary; SIZE compares
# RFC822.SIZE (summary.sizes), not kept in a Summary
KEYS: dict[str, Callable[[Summary], object]] = {
    "ARRIVAL": lambda x: x.arrival,
    "CC": lambda x: collate(x.cc),
    "DATE": lambda x: x.date,
    "FROM": lambda x: collate(x.from_),
    "SUBJECT": lambda x: collate(x.subject),
    "TO": lambda x: collate(x.to),
    "DISPLAYFROM": lambda x: collate_unicode(x.display_from),
    "DISPLAYTO": lambda x: collate_unicode(x.display_to),
}
CRITERIA = {*KEYS, "SIZE"}


def parse_sort(r: p.Reader):
    """`[RETURN (opts) SP] (criteria) SP charset SP search-keys`."""
    ret = p.search_return(r)

    def criterion() -> tuple[str, bool]:
        word = r.atom().upper()
        reverse = word == "REVERSE"
        if reverse:
            r.sp()
            word = r.atom().upper()
        if word not in CRITERIA:
            raise p.ParseError("unknown sort criterion")
        return word, reverse
    criteria = r.paren_list(criterion, empty_ok=False)
    r.sp()
    charset = r.astring().decode("ascii", "replace")
    r.sp()
    return ret, criteria, charset, p.search_keys(r)


def order(s, msgs: list[Message], criteria: list[tuple[str, bool]]) -> list[Message]:
    """msgs (in mailbox order) in the order of the criteria."""
    box, site = s.box, s.opts.site
    kept = summary.kept_cache(box, site, len(msgs))
    names = {name for name, _ in criteria}
    values: dict[str, list] = {}
    try:
        if names & set(KEYS):
            sums = summary.summaries(box, msgs, site, kept)
            values = {name: [KEYS[name](x) for x in sums] for name in names & set(KEYS)}
        if "SIZE" in names:
            values["SIZE"] = summary.sizes(box, msgs, site, kept)
    finally:
        summary.flush(box, kept)
    index = list(range(len(msgs)))
    for name, reverse in reversed(criteria):
        v = values[name]
        index.sort(key=v.__getitem__, reverse=reverse)     # stable, reversed too
    return [msgs[i] for i in index]


def cmd_sort(s, req: Request) -> None:
    ret, criteria, charset, key = req.args
    if search.charset_refused(s, req, charset):
        esearch.forget(s, ret)
        return
    s.report(expunges=req.uid, uid=req.uid)
    found = order(s, search.matching(s, key), criteria)
    if ret is not None:
        esearch.answer(s, req, ret, found, ordered=True)
    else:
        box = s.box
        nums = [m.uid for m in found] if req.uid else [box.seq(m) for m in found]
        s.untagged(" ".join(["SORT"] + [str(n) for n in nums]))
    s.ok(req)
