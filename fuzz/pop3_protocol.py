"""The POP3 command loop (upas/pop3/protocol.py): lines through
LineSplitter into Session.handle, with the pop3 tests' in-memory
collaborators.  Every event must be bytes/Sleep/StartTLS/Close, every reply
line must end in CRLF, and nothing may raise."""
from upas.pop3 import protocol as P


def _session() -> P.Session:
    from tests.test_pop3_protocol import Auth, Host
    return P.Session(Auth(), Host(), allow_clear=True, delay_scale=0)


def target(data: bytes) -> None:
    s = _session()
    events = list(s.start())
    sp = P.LineSplitter()
    for item in sp.feed(data) + list(sp.eof()):
        evs = s.overlong() if item is P.OVERLONG else s.handle(item)
        for ev in evs:
            if isinstance(ev, bytes):
                assert ev.endswith(b"\r\n") or not ev, ev[-20:]
            else:
                assert isinstance(ev, (P.Sleep, P.StartTLS, P.Close)), ev
            if isinstance(ev, P.Close):
                return
    del events
