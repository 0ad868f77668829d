"""A message's two times as seconds since the epoch (UTC): its internal
date (the From line's, as INTERNALDATE shows it) and its sent date (the
Date field), for WITHIN's OLDER/YOUNGER (RFC 5032) and SORT/THREAD's
ARRIVAL and DATE (RFC 5256)."""
from __future__ import annotations

import calendar
import email.utils
import re

from upas.imap4d import envelope as env
from upas.imap4d import fetch
from upas.imap4d import parser as p

_INTERNAL = re.compile(r"(\d\d)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")


def internal_time(unixheader: bytes) -> int:
    """The internal date in UTC seconds (an unparsable From line: now, as
    INTERNALDATE says)."""
    m = _INTERNAL.fullmatch(fetch.internaldate(unixheader))
    d, mon, y, hh, mm, ss = (int(m.group(1)), p.MONTHS.index(m.group(2)) + 1, int(m.group(3)),
                             int(m.group(4)), int(m.group(5)), int(m.group(6)))
    off = (int(m.group(8)) * 60 + int(m.group(9))) * 60
    return calendar.timegm((y, mon, d, hh, mm, ss)) - (off if m.group(7) == "+" else -off)


def sent_time(rawheader: bytes) -> int | None:
    """The Date field in UTC seconds; None when missing or unparsable."""
    v = env.field(rawheader, "date")
    if not v:
        return None
    try:
        tt = email.utils.parsedate_tz(v.decode("ascii", "replace"))
        return email.utils.mktime_tz(tt) if tt else None
    except (ValueError, OverflowError, TypeError):
        return None
