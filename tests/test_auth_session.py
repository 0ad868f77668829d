"""authsrv's sans-I/O Session fed bytes directly, with keys from a real KeyDB."""
import pytest

from auth import crypt, demo, speaksfor
from auth.authsrv import MAXFAIL, Config, KeyStore, Session
from auth.keydb import KeyDB, KeyfsError
from auth.records import (AuthType, Authenticator, RecordNum, Ticket, Ticketreq, TICKREQLEN)
from upas.ninep.server import Error

HOSTKEY = crypt.passtokey(demo.HOST_PASSWORD)


class DBFiles:
    """keyfs's paths (USER/FILE) straight onto a KeyDB, as the 9P tree maps them."""

    def __init__(self, db: KeyDB):
        self.db = db

    def _split(self, path):
        user, file = path.split("/")
        try:
            return self.db.lookup(user), file
        except KeyfsError as e:
            raise Error(str(e))

    def read(self, path):
        u, f = self._split(path)
        try:
            return self.db.read(u, f)
        except KeyfsError as e:
            raise Error(str(e))

    def write(self, path, data):
        u, f = self._split(path)
        return self.db.write(u, f, data)


@pytest.fixture
def db(tmp_path):
    files = demo.make_demo(str(tmp_path))
    return KeyDB(files.keys, crypt.passtokey(demo.AUTHKEY_PASSWORD))


@pytest.fixture
def session(db):
    cfg = Config(KeyStore(DBFiles(db)), demo.AUTHDOM, speaksfor.parse(demo.SPEAKSFOR))
    return Session(cfg, "10.0.0.1")


def _apop_start(s: Session, kind=AuthType.AuthApop) -> bytes:
    assert s.want == TICKREQLEN
    out = s.feed(Ticketreq(kind, authdom=demo.AUTHDOM, hostid=demo.HOSTID).pack())
    assert out[0] == AuthType.AuthOKvar and int(out[1:6]) == len(out) - 6
    return out[6:]


def _respond(s: Session, user: str, resp: bytes, kind=AuthType.AuthApop, chal=b"ABCDEFGH") -> bytes:
    out = s.feed(Ticketreq(kind, authdom=demo.AUTHDOM, chal=chal, hostid=demo.HOSTID,
                           uid=user).pack())
    assert out == b"" and s.want == 32
    return s.feed(resp)


def test_apop_success_and_log(session, db):
    chal = _apop_start(session)
    out = _respond(session, "glenda", crypt.apop_digest(chal, b"glenda-apop").encode())
    assert len(out) == 86
    t = Ticket.unpack(out[1:73], HOSTKEY)
    assert (t.num, t.chal, t.cuid, t.suid) == (RecordNum.AuthTs, b"ABCDEFGH", "glenda", "glenda")
    assert Authenticator.unpack(out[73:], t.key) == Authenticator(RecordNum.AuthAc, b"ABCDEFGH", 0)
    assert session.want == TICKREQLEN          # back to the request loop


def test_cram_upper_case_accepted(session):
    chal = _apop_start(session, AuthType.AuthCram)
    resp = crypt.cram_digest(chal, b"bob-apop").upper().encode()
    assert len(_respond(session, "bob", resp, AuthType.AuthCram)) == 86


def test_failures_counted_and_seventh_ends(session, db):
    _apop_start(session)
    for i in range(MAXFAIL):
        out = _respond(session, "bob", b"0" * 32)
        assert len(out) == 65 and out[0] == AuthType.AuthErr
        assert out[1:].rstrip(b"\0") == b"apop-fail bad response 10.0.0.1"
    assert session.want == 0
    assert db.read(db.lookup("bob"), "log") == b"7\n"


def test_type_switch_mid_exchange_ends_session(session):
    _apop_start(session)
    session.feed(Ticketreq(AuthType.AuthCram, hostid=demo.HOSTID, uid="bob").pack())
    assert session.feed(b"0" * 32) == b"" and session.want == 0


def test_unknown_request_type_ends_session(session):
    assert session.feed(bytes([42]) + bytes(140)) == b"" and session.want == 0


def test_feed_must_match_want(session):
    with pytest.raises(ValueError):
        session.feed(b"short")


def test_p9cr(session):
    out = session.feed(Ticketreq(AuthType.AuthChal, chal=b"12345678", hostid=demo.HOSTID,
                                 uid="glenda").pack())
    assert len(out) == 17 and out[0] == AuthType.AuthOK and session.want == 16
    chal = out[1:].rstrip(b"\0")
    resp = crypt.netcrypt(crypt.passtokey("glenda-pw"), chal).encode().ljust(16, b"\0")
    out = session.feed(resp)
    assert len(out) == 86
    assert Ticket.unpack(out[1:73], HOSTKEY).cuid == "glenda"


def test_disabled_user_cannot_apop(session, db):
    db.write(db.lookup("glenda"), "status", b"disabled")
    chal = _apop_start(session)
    assert _respond(session, "glenda", crypt.apop_digest(chal, b"glenda-apop").encode())[0] == 5
