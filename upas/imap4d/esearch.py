"""SEARCH and SORT with RETURN options: ESEARCH (RFC 4731), ESORT
(RFC 5267), and SEARCHRES (RFC 5182): `SAVE` keeps the result for `$`.

The saved result is kept as UIDs with the mailbox it was made in (in
session.extra), so `$` names the same messages after others are
expunged, and nothing in another mailbox."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from upas.imap4d import sequenceset
from upas.imap4d.request import Request

if TYPE_CHECKING:
    from upas.imap4d.mailbox import Message

_SAVED = "searchres"            # session.extra: (mailbox, frozenset of uids)


def saved(s) -> list["Message"]:
    """The messages `$` names now (none if nothing was saved in this
    mailbox's selection), in mailbox order."""
    box, uids = s.extra.get(_SAVED, (None, frozenset()))
    if box is None or box is not s.box:
        return []
    return [m for m in box.msgs if m.uid in uids and not m.expunged]


def _save(s, msgs: list["Message"]) -> None:
    s.extra[_SAVED] = (s.box, frozenset(m.uid for m in msgs))


def forget(s, ret: tuple[str, ...] | None) -> None:
    """A command with SAVE failed: `$` becomes empty (RFC 5182 2.1)."""
    if ret is not None and "SAVE" in ret:
        _save(s, [])


_ORDER = ("MIN", "MAX", "ALL", "COUNT")      # as every example of RFC 4731 and RFC 5182 has them


def answer(s, req: Request, ret: tuple[str, ...], found: list["Message"],
           ordered: bool, modseq_of: Callable[["Message"], int] | None = None) -> None:
    """The ESEARCH response for these messages, and what SAVE keeps.
    `ordered`: found is in sort order (ESORT: MIN and MAX are its first
    and last, RFC 5267 3); else in mailbox order (MIN is the lowest).
    `modseq_of`: the search had a MODSEQ key; the reply ends with the
    highest MODSEQ of the messages it names (RFC 4731 3.2)."""
    nums = [m.uid for m in found] if req.uid else s.box.seqs(found) if not ordered \
        else [s.box.seq(m) for m in found]
    ends = [k for k in ("MIN", "MAX") if k in ret]
    only_ends = bool(ends) and not {"ALL", "COUNT"} & set(ret)
    named = _ends(found, ends, ordered) if only_ends else found
    if "SAVE" in ret:
        _save(s, named if only_ends else found)           # RFC 5182 2.4
    if ret == ("SAVE",):
        return                          # SAVE alone: no ESEARCH (RFC 5182 2.4)
    if not ordered:
        first, last = (min(nums), max(nums)) if nums else (0, 0)
    else:
        first, last = (nums[0], nums[-1]) if nums else (0, 0)
    items = [f'ESEARCH (TAG "{req.tag}")'] + (["UID"] if req.uid else [])
    for opt in (o for o in _ORDER if o in ret):
        if opt == "MIN" and nums:
            items.append(f"MIN {first}")
        elif opt == "MAX" and nums:
            items.append(f"MAX {last}")
        elif opt == "ALL" and nums:
            items.append("ALL " + sequenceset.sequence_set(nums))
        elif opt == "COUNT":
            items.append(f"COUNT {len(nums)}")
    if modseq_of is not None and named and set(ret) - {"SAVE"}:
        items.append(f"MODSEQ {max(modseq_of(m) for m in named)}")
    s.untagged(" ".join(items))


def _ends(found: list["Message"], ends: list[str], ordered: bool) -> list["Message"]:
    """The messages MIN and MAX name: the first and last found (in sort
    order, or in mailbox order, where found already is)."""
    pick = {"MIN": 0, "MAX": -1}
    return list({id(found[pick[k]]): found[pick[k]] for k in ends}.values()) if found else []
