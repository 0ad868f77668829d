"""What a user name may hold: no control characters (issue 17).

A name with a NUL passed the auth chain cut at the NUL (authsrv's ticket
request is a C string) while imap4d went on with the whole name; other
control characters end up in logs and file names.  Every place that takes
a user name from outside -- pop3 USER/APOP/AUTH, imap4d LOGIN and
AUTHENTICATE, factotum's server roles, authsrv's ticket requests, keyfs's
new users -- refuses one that fails `valid` before anything else sees it.
"""
from __future__ import annotations

import unicodedata


def valid(name: str) -> bool:
    """Not empty, and no control character (C0, DEL, C1) and no byte that
    is not UTF-8 (decoded with surrogateescape: a lone surrogate)."""
    return bool(name) and not any(unicodedata.category(c) in ("Cc", "Cs") for c in name)
