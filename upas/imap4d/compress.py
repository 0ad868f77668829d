"""COMPRESS (RFC 4978): the client asks, after login, for the rest of the
connection to be deflated both ways; the deflating is the driver's
(upas/transport/deflate.py).  Plan 9 had none (docs/decisions.md).

It is offered with TLS and without: under TLS the deflate layer runs
above it (TLS 1.3 has no compression of its own).  The client's password
never passes through the compressor, as the command is taken only after
login, so what a compressed length could tell of a secret is limited to
mail the user can read anyway.
"""
from __future__ import annotations

from . import parser as p

MECHANISM = "DEFLATE"


def parse_compress(r: p.Reader) -> str:
    return r.atom().upper()


def cmd_compress(s, req) -> None:
    if req.args != MECHANISM:
        return s.bad(req, f"unknown compression mechanism {req.args}")
    if s.deflate:
        # RFC 4978 3: NO with COMPRESSIONACTIVE when the mechanism runs already
        return s.tagged(req, "NO [COMPRESSIONACTIVE] DEFLATE active via COMPRESS")
    if s.framer.has_input():
        # RFC 4978 3: the client waits for the reply before it sends more;
        # what came meanwhile was not deflated, so deflating cannot start
        return s.bad(req, "command sent before the reply to COMPRESS")
    s.tagged(req, "OK DEFLATE active")
    s.start_deflate()
