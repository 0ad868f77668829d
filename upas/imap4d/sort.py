"""SORT and UID SORT (RFC 5256), with SORT=DISPLAY's keys (RFC 5957) and
ESORT's RETURN options (RFC 5267).

The messages the search keys match are ordered by the criteria in turn,
each a stable sort from the last criterion to the first, so that ties
keep mailbox order (RFC 5256: the final tie-breaker is the sequence
number, never reversed).  The data compared come from summary.py (kept
by digest in the sort index: no message is read again, and a warm sort
of the whole mailbox parses one column of it)."""
from __future__ import annotations

from typing import Callable

from upas.imap4d import esearch, msgview, search, summary
from upas.imap4d import parser as p
from upas.imap4d.mailbox import Message
from upas.imap4d.request import Request
from upas.imap4d.summary import collate, collate_unicode

# sort key -> the Summary field it compares, and how (None: as it is);
# SIZE compares RFC822.SIZE (summary.sizes), not kept in a Summary
KEYS: dict[str, tuple[str, Callable[[str], bytes] | None]] = {
    "ARRIVAL": ("arrival", None),
    "CC": ("cc", collate),
    "DATE": ("date", None),
    "FROM": ("from_", collate),
    "SUBJECT": ("subject", collate),
    "TO": ("to", collate),
    "DISPLAYFROM": ("display_from", collate_unicode),
    "DISPLAYTO": ("display_to", collate_unicode),
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


def order(s, msgs: list[Message], criteria: list[tuple[str, bool]]) -> list[int]:
    """The indexes of msgs (in mailbox order) in the order of the criteria."""
    box, site = s.box, s.opts.site
    values: dict[str, list] = {}
    for name in {name for name, _ in criteria}:
        if name == "SIZE":
            kept = summary.kept_cache(box, site, len(msgs))
            try:
                values[name] = summary.sizes(box, msgs, site, kept)
            finally:
                summary.flush(box, kept)
            continue
        field, how = KEYS[name]
        col = summary.columns(box, msgs, site, (field,))[0]
        values[name] = col if how is None else list(map(how, col))
    index = list(range(len(msgs)))
    for name, reverse in reversed(criteria):
        v = values[name]
        index.sort(key=v.__getitem__, reverse=reverse)     # stable, reversed too
    return index


def cmd_sort(s, req: Request) -> None:
    ret, criteria, charset, key = req.args
    if search.charset_refused(s, req, charset):
        esearch.forget(s, ret)
        return
    modseq_of = search.modseq_reporter(s, key)
    s.report(expunges=req.uid, uid=req.uid)
    matched = search.matching(s, key)
    index = order(s, matched, criteria)
    if ret is not None or modseq_of:        # (a lazy view's ALL made a list)
        listed = msgview.listed(matched)
        found = [listed[i] for i in index]
    if ret is not None:
        esearch.answer(s, req, ret, found, ordered=True, modseq_of=modseq_of)
    else:
        # numbers in one pass over the mailbox (none if all messages
        # matched, or of a lazy view's columns), then put in order
        box = s.box
        nums = range(1, len(matched) + 1) if len(matched) == box.count() and not req.uid \
            else search.numbers(box, matched, req.uid)
        words = ["SORT", *map(str, map(nums.__getitem__, index))]
        if modseq_of and found:         # RFC 7162 3.1.9, as SEARCH's
            words.append(f"(MODSEQ {max(modseq_of(m) for m in found)})")
        s.untagged(" ".join(words))
    s.ok(req)
