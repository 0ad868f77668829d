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


def _raw(internal: float, header: str, body: str = "text\n") -> bytes:
    return (f"From x@example.org {time.strftime('%a %b %d %H:%M:%S GMT %Y', time.gmtime(internal))}\n"
            + header.strip("\n") + "\n\n" + body + "\n").encode()


def peer_mailbox() -> bytes:
    """The mailbox SORT and THREAD are compared with Dovecot on
    (tests/data/dovecot-sort.json): reply and forward markers, encoded
    words, list tags, missing and unparsable dates, equal dates, group
    and missing addresses, References with missing, duplicate and
    looping ids, messages without a Message-ID."""
    t = 1_100_000_000
    h = [
        "Date: Mon, 01 Nov 2004 10:00:00 +0000\nFrom: Rob Pike <rob@example.org>\nTo: glenda@example.org\n"
        "Subject: plan 9 release\nMessage-ID: <r1@example.org>",
        "Date: Mon, 01 Nov 2004 11:00:00 +0100\nFrom: ken@example.org\nTo: Glenda <glenda@example.org>\n"
        "Cc: rob@example.org\nSubject: Re: plan 9 release\nMessage-ID: <r2@example.org>\n"
        "In-Reply-To: <r1@example.org>",
        "Date: Mon, 01 Nov 2004 12:00:00 -0500\nFrom: =?UTF-8?Q?J=C3=BCrgen?= <jurgen@example.org>\n"
        "To: undisclosed-recipients:;\nSubject: =?UTF-8?B?R3LDvMOfZQ==?= aus Berlin\n"
        "Message-ID: <g1@example.org>",
        "From: Dennis <dmr@example.org>\nTo: ken@example.org\nSubject: RE: [9fans] Plan 9 Release\n"
        "Message-ID: <r3@example.org>\nReferences: <r1@example.org> <r2@example.org>",
        "Date: not a date\nFrom: \"Howard, Trickey\" <howard@example.org>\nTo: rob@example.org\n"
        "Subject: [9fans] acme\nMessage-ID: <a1@example.org>",
        "Date: Tue, 02 Nov 2004 09:00:00 +0000\nFrom: phil@example.org (Phil W)\nTo: 9fans@example.org\n"
        "Subject: Fwd: acme (fwd)\nMessage-ID: <a2@example.org>\nReferences: <a0@example.org>",
        "Date: Tue, 02 Nov 2004 09:00:00 +0000\nFrom: russ@example.org\nTo: 9fans@example.org\n"
        "Subject: [Fwd: Re: acme]\nMessage-ID: <a3@example.org>\nReferences: <a0@example.org>",
        "Date: Tue, 02 Nov 2004 08:00:00 +0000\nTo: nobody@example.org\nSubject: no sender",
        "Date: Wed, 03 Nov 2004 10:00:00 +0000\nFrom: glenda@example.org\nTo: bell@example.org\n"
        "Subject: loop one\nMessage-ID: <l1@example.org>\nReferences: <l2@example.org>",
        "Date: Wed, 03 Nov 2004 10:05:00 +0000\nFrom: glenda@example.org\nTo: bell@example.org\n"
        "Subject: Re: loop one\nMessage-ID: <l2@example.org>\nReferences: <l1@example.org>",
        "Date: Wed, 03 Nov 2004 10:10:00 +0000\nFrom: Ken <ken@example.org>\nTo: Zed <zed@example.org>\n"
        "Subject: duplicate\nMessage-ID: <r1@example.org>",
        "Date: Wed, 03 Nov 2004 10:15:00 +0000\nFrom: _under@example.org\nTo: Al <al@example.org>\n"
        "Subject: _underscore",
        "Date: Thu, 04 Nov 2004 10:00:00 +0000\nFrom: bob@example.org\nTo: carol@example.org\n"
        "Subject: \nMessage-ID: <e1@example.org>",
        "Date: Thu, 04 Nov 2004 10:00:00 +0000\nFrom: Bob <bob@example.org>\nTo: carol@example.org\n"
        "Subject: Re: =?ISO-8859-1?Q?caf=E9?=\nMessage-ID: <c2@example.org>\n"
        "In-Reply-To: <c1@example.org>",
        "Date: Thu, 04 Nov 2004 09:00:00 +0000\nFrom: Alice <alice@example.org>\nTo: carol@example.org\n"
        "Subject: Re: café\nMessage-ID: <c3@example.org>\nIn-Reply-To: <c1@example.org>",
        "Date: Fri, 05 Nov 2004 10:00:00 +0000\nFrom: zoe@example.org\nTo: zed@example.org\n"
        "Subject: Re: Re: Re: deep\nMessage-ID: <d3@example.org>\n"
        "References: <d0@example.org> <d1@example.org> <d2@example.org>",
        "Date: Fri, 05 Nov 2004 09:00:00 +0000\nFrom: zoe@example.org\nTo: zed@example.org\n"
        "Subject: Re: deep\nMessage-ID: <d1@example.org>\nReferences: <d0@example.org>",
        "Date: Fri, 05 Nov 2004 11:00:00 +0000\nFrom: yan@example.org\nTo: zed@example.org\n"
        "Subject: deep\nMessage-ID: <d9@example.org>",
        "Date: Sat, 06 Nov 2004 10:00:00 +0000\nFrom: a@example.org\nTo: b@example.org\n"
        "Subject: [PATCH] [v2] cleanup\nMessage-ID: <p1@example.org>",
        "Date: Sat, 06 Nov 2004 11:00:00 +0000\nFrom: b@example.org\nTo: a@example.org\n"
        "Subject: Re: [PATCH] [v2] cleanup\nMessage-ID: <p2@example.org>\nIn-Reply-To: <p1@example.org>",
        "Date: Sat, 06 Nov 2004 12:00:00 +0000\nFrom: c@example.org\nTo: a@example.org\n"
        "Subject: Re: [PATCH] [v2] cleanup\nMessage-ID: <p3@example.org>",
    ]
    return b"".join(_raw(t + i * 3600 + (7200 if i % 3 == 0 else 0), x, "x" * (i * 37 % 500) + "\n")
                    for i, x in enumerate(h))


PEER_COMMANDS = [f"SORT ({k}) UTF-8 ALL" for k in (
    "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO",
    "REVERSE DATE", "SUBJECT REVERSE DATE", "REVERSE FROM SIZE")] + [
    "UID SORT (SUBJECT) UTF-8 NOT FROM zoe", "THREAD ORDEREDSUBJECT UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL", "UID THREAD REFERENCES UTF-8 NOT SUBJECT deep"]
