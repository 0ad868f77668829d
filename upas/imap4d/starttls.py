"""STARTTLS (RFC 3501 6.2.1).

Plan 9 had no STARTTLS and ran `tlssrv` in front of imap4d on 993; we do
both in the server (docs/decisions.md): with `-t certfile` (a PEM file
holding the certificate chain and its private key) STARTTLS is offered
before login, and `-T` starts TLS before the greeting, as when the
launcher starts imap4d behind its TLS port.  The TLS itself is the
driver's (upas/transport): the command only asks for it.
"""
from __future__ import annotations

from .request import NOTAUTH


def offered(s) -> bool:
    """STARTTLS can be given now (for CAPABILITY)."""
    return bool(s.opts.certfile) and not s.tls and s.state == NOTAUTH


def cmd_starttls(s, req) -> None:
    if s.tls:
        return s.bad(req, "tls already started")
    if not s.opts.certfile:
        return s.no(req, "don't have any tls credentials")
    s.ok(req, "begin TLS negotiation now")
    s.start_tls()
