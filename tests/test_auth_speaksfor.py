"""The "speaks for" rules (docs/spec/fs-auth.md §3.6: hostid=X uid=..., uid=*, uid=!u)."""
from auth.speaksfor import parse, speaks_for

RULES = parse("""# mail host
hostid=upas
\tuid=!sys uid=!adm uid=*
hostid=cpu uid=glenda
\tuid=bob   # a comment
hostid=cpu uid=*
""")


def test_parse_records_and_continuations():
    assert RULES[0] == [("hostid", "upas"), ("uid", "!sys"), ("uid", "!adm"), ("uid", "*")]
    assert RULES[1] == [("hostid", "cpu"), ("uid", "glenda"), ("uid", "bob")]
    assert len(RULES) == 3


def test_rules():
    assert speaks_for(RULES, "upas", "glenda")
    assert not speaks_for(RULES, "upas", "sys")          # !u wins even with *
    assert speaks_for(RULES, "cpu", "bob")
    assert not speaks_for(RULES, "cpu", "carol")         # only the first cpu record counts
    assert not speaks_for(RULES, "nobody", "glenda")
    assert speaks_for(RULES, "glenda", "glenda")         # everyone speaks for themselves
    assert speaks_for([], "bob", "bob") and not speaks_for([], "bob", "glenda")
