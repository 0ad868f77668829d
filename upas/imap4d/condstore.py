"""CONDSTORE and QRESYNC (RFC 7162) in the session: what enables them,
the parameters and modifiers they add to SELECT, FETCH and STORE, and
the responses they change.  The MODSEQs themselves are modseq.py's.

CONDSTORE is enabled for the session by ENABLE CONDSTORE or QRESYNC,
SELECT/EXAMINE (CONDSTORE), FETCH MODSEQ or (CHANGEDSINCE), STORE
(UNCHANGEDSINCE) and SEARCH MODSEQ (RFC 7162 3.1); from then on every
FETCH the server sends unasked carries UID and MODSEQ, and an EXPUNGE's
tagged OK the HIGHESTMODSEQ.  Once QRESYNC is enabled, expunges are
reported as `* VANISHED uids` (3.2.10)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from upas.imap4d import flagreport, modseq
from upas.imap4d import parser as p

CONDSTORE, QRESYNC = "CONDSTORE", "QRESYNC"
MAX_MODSEQ = 2**63 - 1         # mod-sequence-value (RFC 7162 7)


def enabled(s) -> bool:
    return CONDSTORE in s.enabled


def qresync(s) -> bool:
    return QRESYNC in s.enabled


def enable(s, caps: list[str]) -> list[str]:
    """Enable what of `caps` we have (ENABLE); those newly enabled.  The
    first CONDSTORE-enabling command in a selected mailbox tells the
    client the mailbox's HIGHESTMODSEQ (RFC 7162 3.1)."""
    out = []
    for c in caps:
        c = c.upper()
        if c in (CONDSTORE, QRESYNC) and c not in s.enabled and c not in out:
            out.append(c)
    was = enabled(s)
    s.enabled.update(out)
    if QRESYNC in out:
        s.enabled.add(CONDSTORE)
    if not was and enabled(s) and s.box is not None:
        s.untagged(highest_line(s.box))
    return out


def highest_line(box) -> str:
    return f"OK [HIGHESTMODSEQ {box.modseqs.highest}] Highest"


def mod_sequence(r: p.Reader, zero_ok: bool = True) -> int:
    """mod-sequence-value (63 bits, RFC 7162 7); mod-sequence-valzer with zero_ok."""
    d = r._run(lambda c: 0x30 <= c <= 0x39)
    if not d or len(d) > 19 or int(d) > MAX_MODSEQ or (not zero_ok and int(d) == 0):
        raise p.ParseError("bad mod-sequence")
    return int(d)


# ------------------------------------------------------------ SELECT

@dataclass
class Resync:
    uidvalidity: int
    modseq: int
    known: list[tuple[int, int]] | None      # known-uids; None: all


def _parameters(r: p.Reader, take: Callable[[str], None]) -> None:
    """` (WORD ... WORD ...)` (RFC 4466's select-params and fetch-modifiers):
    take(word) reads each word's arguments."""
    r.sp()
    r.expect(b"(")
    while True:
        take(r.atom().upper())
        if r.peek() != 0x20:
            break
        r.sp()
    r.expect(b")")


def parse_select_params(r: p.Reader) -> tuple[bool, Resync | None]:
    """` (CONDSTORE)` / ` (QRESYNC (uidvalidity modseq [known-uids
    [seq-match-data]]))` after SELECT's mailbox: (condstore, resync).
    The seq-match-data is read and not used: our MODSEQs say which UIDs
    went without it."""
    got: dict[str, object] = {}

    def take(word: str) -> None:
        if word == CONDSTORE:
            got[word] = True
        elif word == QRESYNC:
            got[word] = _qresync_param(r)
        else:
            raise p.ParseError("unknown select parameter")
    if not r.at_end():
        _parameters(r, take)
    return bool(got.get(CONDSTORE)), got.get(QRESYNC)


def _qresync_param(r: p.Reader) -> Resync:
    r.sp()
    r.expect(b"(")
    v = r.number(nonzero=True)
    r.sp()
    ms = mod_sequence(r, zero_ok=False)
    known = None
    if r.peek() == 0x20:
        r.sp()
        known = r.seqset(star_ok=False)
        if r.peek() == 0x20:
            r.sp()
            r.expect(b"(")
            r.seqset(star_ok=False)
            r.sp()
            r.seqset(star_ok=False)
            r.expect(b")")
    r.expect(b")")
    return Resync(v, ms, known)


def after_select(s, cond: bool, resync: Resync | None) -> None:
    """SELECT's CONDSTORE and QRESYNC responses (RFC 7162 3.1.2.1, 3.2.5):
    the HIGHESTMODSEQ, and for a client that knows this UIDVALIDITY, the
    UIDs expunged and the messages changed since its MODSEQ."""
    box = s.box
    if cond or resync is not None:
        s.enabled.add(CONDSTORE)
    if not enabled(s):
        return
    s.untagged(highest_line(box))
    if resync is None or resync.uidvalidity != box.uidvalidity:
        return
    known = resync.known or [(1, box.uidnext - 1 or 1)]
    gone = box.modseqs.vanished(resync.modseq, known, box.uidnext)
    if gone:
        s.untagged("VANISHED (EARLIER) " + modseq.format_set(gone))
    changed = box.modseqs.changed_since(resync.modseq)
    msgs = [m for m in box.with_uids(changed) if modseq.within(m.uid, known)]
    if msgs:                    # (without \\Recent under IMAP4rev2: flagreport)
        send_unsolicited(s, box, msgs, True)


# ------------------------------------------------------------ FETCH

@dataclass
class FetchMods:
    changedsince: int | None = None
    vanished: bool = False


def parse_fetch_modifiers(r: p.Reader) -> FetchMods:
    """` (CHANGEDSINCE n [VANISHED])` after FETCH's items (RFC 7162 3.1.4, 3.2.6)."""
    mods = FetchMods()

    def take(word: str) -> None:
        if word == "CHANGEDSINCE":
            r.sp()
            mods.changedsince = mod_sequence(r, zero_ok=False)
        elif word == "VANISHED":
            mods.vanished = True
        else:
            raise p.ParseError("unknown fetch modifier")
    if not r.at_end():
        _parameters(r, take)
    return mods


def fetch_check(s, req, mods: FetchMods) -> str | None:
    """The BAD text for modifiers not allowed here (RFC 7162 3.2.6), else None."""
    if mods.vanished and not (req.uid and qresync(s)):
        return "VANISHED needs UID FETCH and QRESYNC"
    if mods.vanished and mods.changedsince is None:
        return "VANISHED needs CHANGEDSINCE"
    return None


def vanished_earlier(s, ranges: list[tuple[int, int]], since: int) -> None:
    """`* VANISHED (EARLIER)` for the UIDs of a UID FETCH's set expunged
    after `since` (RFC 7162 3.2.6)."""
    box = s.box
    top = box.uidnext - 1
    known = [(a, min(b, top)) for a, b in ranges if a <= top]
    gone = box.modseqs.vanished(since, known, box.uidnext) if known else []
    if gone:
        s.untagged("VANISHED (EARLIER) " + modseq.format_set(gone))


def item(box, m) -> bytes:
    return b"MODSEQ (%d)" % box.modseqs.of(m.uid)


# ------------------------------------------------------------ STORE

def parse_unchangedsince(r: p.Reader) -> int | None:
    """`(UNCHANGEDSINCE n) ` before STORE's item, if there (RFC 7162 3.1.3)."""
    if r.peek() != 0x28:
        return None
    r.expect(b"(")
    if r.atom().upper() != "UNCHANGEDSINCE":
        raise p.ParseError("unknown store modifier")
    r.sp()
    n = mod_sequence(r)
    r.expect(b")")
    r.sp()
    return n


def send_unsolicited(s, box, msgs: list, uid: bool) -> None:
    """Send unasked FETCHes of messages' flags (with their UIDs under a UID
    command): with UID and MODSEQ once CONDSTORE is enabled (RFC 7162
    3.1); no \\Recent under IMAP4rev2 (rev2.flag_text).  Made and sent a
    part at a time (flagreport.send): another session's STORE 1:* is
    10,000 of them."""
    if enabled(s):
        items = [flagreport.UID, flagreport.FLAGS, flagreport.MODSEQ]
    else:
        items = [flagreport.UID, flagreport.FLAGS] if uid else [flagreport.FLAGS]
    flagreport.send(s, box, msgs, items)
