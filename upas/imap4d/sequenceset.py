"""Runs of consecutive numbers, as IMAP's sequence-sets (`2,10:11`) and
selectmark's record (`2 10-11`) write them."""
from __future__ import annotations

from typing import Iterator


def runs(nums: list[int]) -> Iterator[tuple[int, int]]:
    """(first, last) of each run of consecutive ascending numbers, in the
    order given (ESORT's ALL keeps the sort order)."""
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        yield nums[i], nums[j]
        i = j + 1


def sequence_set(nums: list[int], sep: str = ",", dash: str = ":") -> str:
    """`2,10:11` (RFC 3501 sequence-set) for [2, 10, 11]."""
    return sep.join(str(a) if a == b else f"{a}{dash}{b}" for a, b in runs(nums))
