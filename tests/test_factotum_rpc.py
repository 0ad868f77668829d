"""factotum's rpc state machine, key ring and protocols without sockets.

The auth-server side is absent here (authdial fails), so only what needs no
AS runs: the rpc framing and limits, ctl, pass, apop/cram client role and
p9sk1 between two conversations (the server invents tickets when it is
asked for its own user, as Plan 9's mkserverticket does).
docs/spec/fs-auth.md §2.2-2.5, facts 13, 14, 17, 18.
"""
import pytest
from hypothesis import given, strategies as st

from auth.records import ASError, AuthInfo
from lib.attrs import format_attrs, parse_attrs, quote, tokenize
from auth.factotum.keys import CtlError
from auth.factotum.proto import Context
from auth.factotum.rpc import Conversation, RpcFileError, new_keyring as make_ring


def no_as(dom):
    raise ASError("no auth server in this test")


def conv(*keys, sysuser="upas"):
    ring = make_ring()
    for k in keys:
        ring.ctl("key " + k)
    return Conversation(Context(ring, no_as, sysuser))


def rpc(c, request, count=4096):
    c.write(request)
    return c.read(count)


# --- rpc framing and limits (2.3) ---

def test_start_reply_is_exactly_ok():                       # docs/spec/fs-auth.md fact 13
    c = conv("proto=pass user=glenda !password=pw")
    assert rpc(c, b"start proto=pass") == b"ok"


def test_read_with_data_is_ok_space_data():                 # docs/spec/fs-auth.md fact 13
    c = conv("proto=pass user=glenda !password=pw")
    rpc(c, b"start proto=pass")
    assert rpc(c, b"read") == b"ok glenda pw"


def test_start_without_proto():                             # docs/spec/fs-auth.md fact 14
    assert rpc(conv(), b"start role=client") == b"error did not specify proto"


def test_read_before_start_is_an_error():                   # docs/spec/fs-auth.md fact 14
    assert rpc(conv(), b"read") == b"error no current protocol"
    assert rpc(conv(), b"write x") == b"error no current protocol"


def test_unknown_protocol_and_verb():
    assert rpc(conv(), b"start proto=x role=client") == b"error unknown protocol 'x'"
    assert rpc(conv(), b"frobnicate") == b"error unknown verb"


def test_authinfo_before_the_end():
    c = conv("proto=pass user=glenda !password=pw")
    assert rpc(c, b"authinfo") == b"error authentication unfinished"
    rpc(c, b"start proto=pass")
    rpc(c, b"read")
    assert rpc(c, b"read") == b"done"
    assert rpc(c, b"authinfo") == b"error no authinfo available"


def test_read_takes_no_parameters():
    c = conv("proto=pass user=glenda !password=pw")
    rpc(c, b"start proto=pass")
    assert rpc(c, b"read x") == b"error read needs no parameters"


def test_request_must_be_shorter_than_4096():
    c = conv()
    with pytest.raises(RpcFileError, match="^rpc too large$"):
        c.write(b"write " + b"x" * 4090)
    c.write(b"write " + b"x" * 4089)                         # 4095 bytes is fine


def test_second_write_before_read():
    c = conv()
    c.write(b"read")
    with pytest.raises(RpcFileError, match="^rpc already pending; read to clear$"):
        c.write(b"read")


def test_read_limits():
    c = conv()
    with pytest.raises(RpcFileError, match="^no rpc pending$"):
        c.read(4096)
    c.write(b"read")
    with pytest.raises(RpcFileError, match="^rpc read too small$"):
        c.read(63)
    assert c.read(64) == b"error no current protocol"      # still pending until read


def test_pass_read_too_small_for_the_answer():
    c = conv("proto=pass user=glenda !password=" + "p" * 100)
    rpc(c, b"start proto=pass")
    assert rpc(c, b"read", 64) == b"toosmall 107"


# --- keys and ctl (2.2) ---

def test_ctl_listing_hides_secrets():                       # docs/spec/fs-auth.md fact 18
    ring = make_ring()
    ring.ctl("key proto=apop server=pop.example.com user=alice !password=secret")
    assert ring.listing() == "key proto=apop server=pop.example.com user=alice !password?\n"
    assert "secret" not in ring.listing().replace("!password?", "")


def test_ctl_errors():
    ring = make_ring()
    with pytest.raises(CtlError, match="^key without protos$"):
        ring.ctl("key user=glenda !password=x")
    with pytest.raises(CtlError, match="^multiline write not allowed$"):
        ring.ctl("key proto=pass user=a !password=b\nkey proto=pass user=c !password=d\n")
    with pytest.raises(CtlError, match="^found no keys to delete$"):
        ring.ctl("delkey proto=pass")
    with pytest.raises(CtlError, match=r"^only !private\? patterns"):
        ring.ctl("delkey proto=pass !password=b")
    with pytest.raises(CtlError, match="^proto p9any doesn't take keys$"):
        ring.ctl("key proto=p9any user=a")
    with pytest.raises(CtlError, match="^no key data$"):
        ring.ctl("key proto=p9sk1 user=a dom=d")
    with pytest.raises(CtlError, match="^malformed key data$"):
        ring.ctl("key proto=p9sk1 user=a dom=d !hex=123")
    ring.ctl("# a comment")
    ring.ctl("")
    assert ring.listing() == ""


def test_key_replaces_identical_public_attributes_and_delkey():
    ring = make_ring()
    ring.ctl("key proto=pass user=a !password=one")
    ring.ctl("key proto=pass user=a !password=two\n")
    ring.ctl("key proto=pass proto=apop user=b !password=x")
    assert ring.listing() == ("key proto=pass user=a !password?\n"
                              "key proto=pass user=b !password?\n"
                              "key proto=apop user=b !password?\n")
    ring.ctl("delkey user=b !password?")
    assert ring.listing() == "key proto=pass user=a !password?\n"


def test_template_rules():
    ring = make_ring()
    ring.ctl("key proto=p9sk1 dom=d user=u role=server !password=x")
    ring.ctl("key proto=pass user=v !password=y")
    assert ring.find([], "proto=p9sk1 role=server user?").get("user") == "u"
    assert ring.find([], "proto=pass role=client").get("user") == "v"   # no role: any role
    with pytest.raises(Exception):
        ring.find([], "proto=p9sk1 role=client user?")


def test_quoting():
    assert quote("") == "''"
    assert quote("it's") == "'it''s'"
    assert quote("a b") == "'a b'"
    assert quote("plain") == "plain"
    assert tokenize("a 'b c' 'it''s' ''") == ["a", "b c", "it's", ""]
    assert format_attrs(parse_attrs("proto=pass user? 'x y'=z n")) == "proto=pass user? 'x y'=z n=''"


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8), max_size=5))
def test_quote_tokenize_round_trip(words):
    assert tokenize(" ".join(quote(w) for w in words)) == words


# --- pass (docs/spec/fs-auth.md fact 17) ---

def test_pass_quotes_a_password_with_a_space():             # docs/spec/fs-auth.md fact 17
    c = conv("proto=pass service=imap server=mail.example.com user=glenda '!password=my pw'")
    assert rpc(c, b"start proto=pass role=client service=imap") == b"ok"
    assert rpc(c, b"read") == b"ok glenda 'my pw'"


def test_pass_needkey():
    c = conv()
    assert rpc(c, b"start proto=pass service=imap") == b"needkey !password? proto=pass service=imap user?"


# --- apop / cram client (2.5) ---

RFC1939 = b"<1896.697170952@dbc.mtview.ca.us>"
RFC2195 = b"<1896.697170952@postoffice.reston.mci.net>"


def test_apop_client_rfc1939():
    c = conv("proto=apop server=dbc.mtview.ca.us user=mrose !password=tanstaaf")
    assert rpc(c, b"start proto=apop role=client server=dbc.mtview.ca.us") == b"ok"
    assert rpc(c, b"read") == b"phase protocol phase error: read in state CNeedChal"
    assert rpc(c, b"write " + RFC1939) == b"ok"
    assert rpc(c, b"read") == b"ok c4c9334bac560ecc979e58001b3e22fb"
    assert b" user=mrose" in rpc(c, b"attr")
    assert rpc(c, b"read") == b"done"


def test_cram_client_rfc2195_upper_case():
    c = conv("proto=cram server=x user=tim !password=tanstaaftanstaaf")
    rpc(c, b"start proto=cram role=client server=x")
    rpc(c, b"write " + RFC2195)
    assert rpc(c, b"read") == b"ok B913A602C7EDA7A495B4E6E7334D3890"


def test_role_required():
    assert rpc(conv(), b"start proto=apop") == b"error role not specified"
    assert rpc(conv(), b"start proto=apop role=boss") == b"error unknown role boss"


# --- p9sk1 between two conversations, tickets invented (no AS) ---

def p9sk1_pair():
    key = "proto=p9sk1 dom=upas.local user=upas !password=upas-host-pw"
    cli, srv = conv(key), conv(key)
    assert rpc(cli, b"start proto=p9sk1 role=client") == b"ok"
    assert rpc(srv, b"start proto=p9sk1 role=server") == b"ok"
    return cli, srv


def test_p9sk1_mutual_authentication_in_process():
    cli, srv = p9sk1_pair()
    chal = rpc(cli, b"read")[3:]
    assert len(chal) == 8
    assert rpc(srv, b"write " + chal) == b"ok"
    treq = rpc(srv, b"read")[3:]
    assert len(treq) == 141
    assert rpc(cli, b"write " + treq) == b"ok"
    tickets = rpc(cli, b"read")[3:]
    assert len(tickets) == 85
    assert rpc(srv, b"write " + tickets) == b"ok"
    auth = rpc(srv, b"read")[3:]
    assert rpc(srv, b"read") == b"done haveai"
    assert rpc(cli, b"write " + auth) == b"ok"
    assert rpc(cli, b"read") == b"done haveai"
    a, b = (AuthInfo.unpack(rpc(x, b"authinfo")[3:]) for x in (cli, srv))
    assert len(a.secret) == 8 and a.secret == b.secret
    assert a.cuid == b.cuid == "upas"


def test_p9sk1_toosmall_and_garbled_ticket():
    cli, srv = p9sk1_pair()
    assert rpc(srv, b"write 12345") == b"toosmall 8"
    rpc(srv, b"write " + rpc(cli, b"read")[3:])
    treq = rpc(srv, b"read")[3:]
    rpc(cli, b"write " + treq)
    tickets = rpc(cli, b"read")[3:]
    assert rpc(srv, b"write " + tickets[:80]) == b"toosmall 85"
    garbled = bytes([tickets[0] ^ 0xFF]) + tickets[1:]
    assert rpc(srv, b"write " + garbled) == b"error auth server protocol botch"
    assert rpc(srv, b"write " + tickets) == b"ok"           # still in SNeedTicket


def test_p9sk1_client_needkey():
    cli = conv()
    rpc(cli, b"start proto=p9sk1 role=client")
    rpc(cli, b"read")
    srv = conv("proto=p9sk1 dom=elsewhere user=h !password=x")
    rpc(srv, b"start proto=p9sk1 role=server")
    rpc(srv, b"write 01234567")
    treq = rpc(srv, b"read")[3:]
    assert rpc(cli, b"write " + treq) == b"needkey !password? dom=elsewhere proto=p9sk1 user?"


def test_p9any_server_offer_leaves_start_attributes_alone():
    srv = conv("proto=p9sk1 dom=upas.local user=upas !password=upas-host-pw")
    assert rpc(srv, b"start proto=p9any role=server") == b"ok"
    assert rpc(srv, b"read") == b"ok v.2 p9sk1@upas.local\0"
    assert rpc(srv, b"attr") == b"ok proto=p9any role=server"
    assert rpc(srv, b"write p9sk1") == b"toosmall 6"
    assert rpc(srv, b"write p9sk1 nowhere\0") == \
        b"error negotiation failed, no common protocols or keys"
    assert rpc(srv, b"write p9sk1 upas.local\0") == b"ok"
    assert rpc(srv, b"read") == b"ok OK\0"
    assert rpc(srv, b"attr") == b"ok proto=p9sk1 role=server dom=upas.local"


def test_p9any_client_picks_p9sk1():
    cli = conv("proto=p9sk1 dom=upas.local user=glenda !password=glenda-pw")
    rpc(cli, b"start proto=p9any role=client")
    assert rpc(cli, b"write v.2 p9sk1@other.dom\0") == \
        b"needkey !password? dom=other.dom proto=p9sk1 user?"
    cli = conv("proto=p9sk1 dom=upas.local user=glenda !password=glenda-pw")
    rpc(cli, b"start proto=p9any role=client")
    assert rpc(cli, b"write v.2 p9sk1@upas.local\0") == b"ok"
    assert rpc(cli, b"read") == b"ok p9sk1 upas.local\0"
    assert rpc(cli, b"write NO\0") == b"error server gave up"


def test_attr_and_errors_never_show_a_private_value():
    c = conv()
    reply = rpc(c, b"start proto=pass user=glenda !password=leaked")
    assert reply.startswith(b"needkey ") and b"leaked" not in reply
    c = conv("proto=apop server=s user=u !password=pw")
    rpc(c, b"start proto=apop role=client server=s !password=leaked")
    assert rpc(c, b"attr") == b"ok proto=apop role=client server=s !password?"


def test_p9any_version_1_offer_skips_ok():
    cli = conv("proto=p9sk1 dom=upas.local user=glenda !password=glenda-pw")
    rpc(cli, b"start proto=p9any role=client")
    assert rpc(cli, b"write p9sk1@upas.local\0") == b"ok"
    assert rpc(cli, b"read") == b"ok p9sk1 upas.local\0"
    assert len(rpc(cli, b"read")) == 3 + 8                  # straight on to p9sk1's CHc


@given(st.binary(max_size=300))
def test_any_request_gets_a_reply(request):
    """Garbage never breaks a conversation: a reply or a 9P-level refusal."""
    c = conv("proto=pass user=glenda !password=pw",
             "proto=p9sk1 dom=upas.local user=upas !password=upas-host-pw")
    for req in (b"start proto=p9any role=server", request, b"write " + request, request):
        c.write(req)
        reply = c.read(4096)
        assert reply.split(b" ", 1)[0] in (b"ok", b"done", b"error", b"needkey", b"phase",
                                           b"toosmall")


def test_p9cr_client_role_answers_with_the_p9sk1_password():       # docs/spec/fs-auth.md fact 28
    c = conv("proto=p9sk1 dom=upas.local user=glenda !password=password")
    assert rpc(c, b"start proto=p9cr role=client") == b"ok"
    assert rpc(c, b"write 12345") == b"ok"
    assert rpc(c, b"read") == b"ok 7d682065"
    assert rpc(c, b"read") == b"done"
