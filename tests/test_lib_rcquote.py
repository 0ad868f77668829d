"""lib/rcquote.py: Plan 9's %q quoting and tokenize, shared by factotum's
attribute lists and upasfs's ctl commands (a real upasfs reading quoted
names is tested in test_imap_spaces.py and test_pop3_server.py)."""
from __future__ import annotations

from hypothesis import given, strategies as st

from lib.rcquote import quote, tokenize

words = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


def test_quote_exact():
    assert quote("mbox") == "mbox"
    assert quote("/mail/box/glenda/Sent Items") == "'/mail/box/glenda/Sent Items'"
    assert quote("it's") == "'it''s'"
    assert quote("") == "''"
    assert quote("a\tb") == "'a\tb'"


def test_tokenize_exact():
    assert tokenize("open '/mail/box/glenda/Sent Items' imap-1") == [
        "open", "/mail/box/glenda/Sent Items", "imap-1"]
    assert tokenize("key proto=pass 'user=it''s'") == ["key", "proto=pass", "user=it's"]


@given(st.lists(words, min_size=1, max_size=4))
def test_round_trip(ws):
    line = "open " + " ".join(quote(w) for w in ws)
    assert tokenize(line) == ["open", *ws]
