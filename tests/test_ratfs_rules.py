"""ratfs tables without 9P: the control-file language, CIDR names, account
patterns, trusted entries and their expiry (docs/spec/fs-auth.md §4)."""
import ipaddress

import pytest

from upas.ratify import rules
from upas.ratify.account import account_matches, first_match
from upas.ratify.tables import TIMEOUT, Tables, TableError


def test_tokens_comments_escapes_commas_lowercase():
    assert rules.tokens("Block 1.2.3.4, 5.6.7.8\t# spam") == ["block", "1.2.3.4", "5.6.7.8"]
    assert rules.tokens("# only a comment") == []
    assert rules.tokens("   ") == []
    assert rules.tokens(r"*block a\#b c\ d") == ["*block", "a#b", "c d"]


def test_fs_auth_fact33_blocked_lines_become_names():
    cl = rules.parse_ctl("*block .*!gre\ndial 135.104.9.0/24\n")
    assert cl.account["block"] == [".*!gre"]
    assert [e.name for e in cl.ip["dial"]] == ["135.104.9.0#24"]


def test_keyword_synonyms_and_star_forms():
    cl = rules.parse_ctl("accept 10.0.0.0/8\nrelay 11.0.0.0/8\n* deny bad.com\n"
                         "*allow good.com\nfrobnicate 1.1.1.1\n")
    assert [e.name for e in cl.ip["allow"]] == ["10.0.0.0#8"]
    assert [e.name for e in cl.ip["delay"]] == ["11.0.0.0#8"]
    assert cl.account["deny"] == ["bad.com"]
    assert cl.account["allow"] == ["good.com"]
    assert all(not v for k, v in cl.ip.items() if k not in ("allow", "delay"))


def test_dangerous_account_patterns_refused():
    cl = rules.parse_ctl("*block * ! *! !* *!* real.com\n")
    assert cl.account["block"] == ["real.com"]


@pytest.mark.parametrize("spec,net", [
    ("135.104.9.0#24", "135.104.9.0/24"),
    ("135.104.9.0/24", "135.104.9.0/24"),
    ("1.2.3.4#32", "1.2.3.4/32"),
    ("1.2.3.4", "1.2.3.4/32"),        # Bell minimal masks
    ("1.2.3", "1.2.3.0/24"),
    ("135.104", "135.104.0.0/16"),
    ("10", "10.0.0.0/16"),            # never a class A mask
    ("::1", "::1/128"),
    ("2001:db8::#32", "2001:db8::/32"),
])
def test_parse_cidr(spec, net):
    assert rules.parse_cidr(spec) == ipaddress.ip_network(net)


@pytest.mark.parametrize("bad", ["", "x.y", "1.2.3.4.5", "1..2", "1.2.3.4#x", "300.1.1.1"])
def test_parse_cidr_rejects(bad):
    with pytest.raises(rules.CidrError):
        rules.parse_cidr(bad)


def test_ournets():
    nets = rules.parse_ournets("defaultdomain x.com\nournets 10.0.0.0/8, 192.168.1.0/24\n")
    assert [n.name for n in nets] == ["10.0.0.0#8", "192.168.1.0#24"]


@pytest.mark.parametrize("pattern,path,want", [
    ("bad.com", "bad.com!joe", True),
    ("bad.com", "bad.com!relay.org!joe", True),     # anywhere among domains
    ("bad.com!", "x.org!bad.com!joe", True),
    ("bad.com!*", "bad.com!x.org!joe", False),      # only as last hop
    ("bad.com!*", "x.org!bad.com!joe", True),
    ("*.bad.com", "mx.bad.com!joe", True),
    ("*.bad.com", "bad.com!joe", True),
    ("*.bad.com", "notbad.com!joe", False),
    ("!joe", "any.where!joe", True),
    ("*!joe", "joe", True),
    ("!joe", "any.where!jim", False),
    ("bad.com!joe", "bad.com!joe", True),
    ("bad.com!joe", "bad.com!x.org!joe", False),
    ("*.bad.com!joe", "a.bad.com!joe", True),
    ("bad.com!jo*", "bad.com!jones", True),
    ("bad.com!jo*", "bad.com!jim", False),
    ("!*spam*", "x.com!*spamfoo", True),            # prefix only: the '*' is literal
    (".*!gre", ".*!gre", True),
])
def test_account_patterns(pattern, path, want):
    assert account_matches(pattern, path) is want


def test_first_match_in_file_order():
    assert first_match(["good.com!bob", "good.com"], "good.com!bob") == "good.com!bob"
    assert first_match(["x.org"], "good.com!bob") is None


class Clock:
    def __init__(self):
        self.t = 1_000_000.0

    def __call__(self):
        return self.t


@pytest.fixture
def files(tmp_path):
    ctl = tmp_path / "blocked"
    conf = tmp_path / "smtpd.conf.ext"
    ctl.write_text("block 10.0.0.0/8\nblock 10.1.0.0/16\n*deny spam.com\n")
    conf.write_text("ournets 135.104.0.0/16\n")
    return ctl, conf


def test_tables_lookup_longest(files):
    ctl, conf = files
    t = Tables(str(ctl), str(conf), clock=Clock())
    assert t.lookup_ip("block", "10.1.2.3") == "10.1.0.0#16"
    assert t.lookup_ip("block", "10.2.2.3") == "10.0.0.0#8"
    assert t.lookup_ip("allow", "10.2.2.3") is None
    assert t.lookup_account("deny", "spam.com!joe") == "spam.com"
    assert t.lookup_trusted("135.104.9.1").name == "135.104.0.0#16"
    assert t.lookup_trusted("10.1.1.1") is None


def test_fs_auth_fact32_temporary_entries_expire_two_hours(files):
    ctl, conf = files
    clock = Clock()
    t = Tables(str(ctl), str(conf), clock=clock)
    e = t.add_trusted("1.2.3.4#32", "u")
    assert (e.mode, e.uid, e.permanent) == (0o444, "u", False)
    with pytest.raises(TableError, match="permission denied"):
        t.remove_trusted(e, "v")
    clock.t += TIMEOUT - 1
    t.refresh()
    assert t.lookup_trusted("1.2.3.4") is e
    clock.t += 1
    t.refresh()
    assert t.lookup_trusted("1.2.3.4") is None


def test_permanent_entries_not_removable(files):
    ctl, conf = files
    t = Tables(str(ctl), str(conf), clock=Clock())
    perm = t.lookup_trusted("135.104.1.1")
    assert perm.mode == 0o111
    with pytest.raises(TableError, match="can't be removed"):
        t.remove_trusted(perm, "upas")


def test_bad_cidr_in_filename(files):
    ctl, conf = files
    t = Tables(str(ctl), str(conf), clock=Clock())
    with pytest.raises(TableError, match="^bad cidr in filename$"):
        t.add_trusted("not-an-address", "u")


def test_reload_when_mtime_changes(files):
    ctl, conf = files
    import os
    t = Tables(str(ctl), str(conf), clock=Clock())
    assert t.lookup_ip("dial", "9.9.9.9") is None
    ctl.write_text("dial 9.0.0.0/8\n")
    st = os.stat(ctl)
    os.utime(ctl, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    t.refresh()
    assert t.lookup_ip("dial", "9.9.9.9") == "9.0.0.0#8"
    assert t.lookup_ip("block", "10.1.2.3") is None   # the old table is gone


from hypothesis import given, strategies as st  # noqa: E402


@given(st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_cidr_names_round_trip(addr, bits):
    net = ipaddress.IPv4Network((addr, bits), strict=False)
    assert rules.parse_cidr(str(net).replace("/", "#")) == net


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(8, 32)), max_size=20),
       st.integers(0, 2**32 - 1))
def test_lookup_is_most_specific_holder(nets, addr):
    entries = [rules.IpEntry(str(i), ipaddress.IPv4Network((a, b), strict=False))
               for i, (a, b) in enumerate(nets)]
    ip = ipaddress.IPv4Address(addr)
    hit = rules.longest_match(entries, ip)
    holders = [e for e in entries if ip in e.net]
    if not holders:
        assert hit is None
    else:
        assert ip in hit.net
        assert hit.net.prefixlen == max(e.net.prefixlen for e in holders)


@given(st.text(max_size=200))
def test_tokens_never_fail_and_are_lower_case(line):
    toks = rules.tokens(line)
    assert all(t and t == t.lower() for t in toks)


def test_ipv6_peer_with_pop3s_host_mask_trusts_only_the_host(files):
    ctl, conf = files
    t = Tables(str(ctl), str(conf), clock=Clock())
    e = t.add_trusted("2001:db8::7#32", "u")           # what pop3 writes for an IPv6 peer
    assert e.net == ipaddress.ip_network("2001:db8::7/128")
    assert t.lookup_trusted("2001:db8::7") is e
    assert t.lookup_trusted("2001:db8::8") is None
    assert t.add_trusted("::ffff:192.0.2.1#32", "u").net == ipaddress.ip_network("192.0.2.1/32")
    assert t.lookup_trusted("::ffff:192.0.2.1").name == "::ffff:192.0.2.1#32"
    assert t.lookup_trusted("192.0.2.1").name == "::ffff:192.0.2.1#32"
