"""Mailboxes made to order for the tests of SORT, THREAD and the search
extensions: each message from a few fields, its From line (the internal
date) and Date field from times given in UTC seconds."""
from __future__ import annotations

import time

DAY = 86400


def message(n: int, subject: str = "", frm: str = "a@example.org", to: str = "b@example.org",
            internal: float = 1_000_000_000, sent: float | None = None, cc: str = "",
            msgid: str = "", refs: str = "", in_reply_to: str = "", body: str = "") -> bytes:
    """One mbox entry (From line first); message n's Message-ID defaults
    to <n@example.org>; sent None: no Date field."""
    head = [f"From sender@example.org {time.strftime('%a %b %d %H:%M:%S GMT %Y', time.gmtime(internal))}"]
    if sent is not None:
        head.append("Date: " + time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(sent)))
    head += [f"From: {frm}", f"To: {to}"]
    if cc:
        head.append(f"Cc: {cc}")
    head.append(f"Subject: {subject}")
    head.append(f"Message-ID: {msgid or f'<{n}@example.org>'}")
    if refs:
        head.append(f"References: {refs}")
    if in_reply_to:
        head.append(f"In-Reply-To: {in_reply_to}")
    text = "\n".join(head) + "\n\n" + (body or f"message {n}\n") + "\n"
    return text.encode()


def mbox(messages: list[bytes]) -> bytes:
    return b"".join(messages)
