"""Roundcube 1.6 (Debian) in headless Chromium against our imap4d: the
threaded list (offered only when the server has THREAD), the list sorted
by subject (SORT), and a message opened.  Run by `make roundcube`.

The expected subject order is computed here from the mailbox file with
Python's mailbox and email modules and RFC 5256's base subject, not from
anything our server says.
"""
from __future__ import annotations

import email.header
import mailbox
import re
import time

import pytest

from tests.mboxgen import DAY, mbox, message
from tests.roundcube.conftest import WAIT

T0 = 1_780_000_000
# (subject as sent, Message-ID, In-Reply-To): three threads and strays,
# with the cases a client sorting raw Subject fields gets wrong.
MESSAGES = [
    ("Plan 9 release notes", "<rel@9.example>", ""),
    ("Re: Plan 9 release notes", "<rel.r1@9.example>", "<rel@9.example>"),
    ("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_Berlin?=", "<gruss@de.example>", ""),
    ("Fwd: apples and oranges", "<fruit@9.example>", ""),
    ("Re: Re: Plan 9 release notes", "<rel.r2@9.example>", "<rel.r1@9.example>"),
    ("zebra crossings", "<zebra@9.example>", ""),
    ("Re: =?UTF-8?B?R3LDvMOfZSBhdXMgQmVybGlu?=", "<gruss.r1@de.example>", "<gruss@de.example>"),
    ("[PATCH] mk: quieter builds", "<patch@9.example>", ""),
    ("meeting tomorrow (fwd)", "<meet@9.example>", ""),
    ("Fw: budget", "<budget@9.example>", ""),
    ("RE: zebra crossings", "<zebra.r1@9.example>", "<zebra@9.example>"),
    ("kernel panic in devmnt", "<panic@9.example>", ""),
]
BODY = "The quick brown fox sleeps under the Plan 9 bunny, message {n}.\n"


def inbox_mbox() -> bytes:
    msgs = []
    for n, (subject, msgid, parent) in enumerate(MESSAGES, 1):
        msgs.append(message(n, subject=subject, frm=f"sender{n}@example.org", to="glenda",
                            internal=T0 + n * DAY, sent=T0 + n * DAY, msgid=msgid,
                            in_reply_to=parent, refs=parent, body=BODY.format(n=n)))
    return mbox(msgs)


def decoded(subject: str) -> str:
    return str(email.header.make_header(email.header.decode_header(subject)))


_TRAILER = re.compile(r"(\s|\(fwd\))+$", re.I)                     # RFC 5256 step 2
_BLOB = r"\[[^\[\]]*\]\s*"
_LEADER = re.compile(rf"^(\s+|(({_BLOB})*(re|fwd?)\s*({_BLOB})?:))", re.I)   # subj-leader
_BLOB_LEAD = re.compile(rf"^{_BLOB}", re.I)


def base_subject(subject: str) -> str:
    """RFC 5256 section 2.1 on a decoded subject (no [fwd: ...] wrappers here)."""
    s = " ".join(decoded(subject).split())
    while True:
        s = _TRAILER.sub("", s)
        while True:
            before = s
            s = _LEADER.sub("", s, count=1)
            blob = _BLOB_LEAD.sub("", s, count=1)
            if blob.strip():        # a leading blob goes unless it is all there is
                s = blob
            if s == before:
                break
        if not _TRAILER.search(s):
            return s


def expected_subject_order(path) -> list[str]:
    """Decoded subjects in SORT SUBJECT order: base subject by
    i;ascii-casemap (RFC 5256's default comparator), ties by sequence."""
    box = mailbox.mbox(str(path))
    subjects = [decoded(m["Subject"]) for m in box]
    box.close()
    keyed = [(base_subject(s).upper().encode(), n, s) for n, s in enumerate(subjects)]
    return [s for _, _, s in sorted(keyed)]


def wait_for(drv, what: str, cond, web):
    end = time.monotonic() + WAIT
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n--- imap.log ---\n{web.imap_log()[-6000:]}"
                         f"\n--- errors.log ---\n{web.errors_log()[-3000:]}")


def list_rows(drv) -> list[dict]:
    """The message list as shown: each row's subject text and classes."""
    return drv.execute_script("""
        return Array.from(document.querySelectorAll('#messagelist tbody tr')).map(tr => ({
            id: tr.id, cls: tr.className,
            subject: (tr.querySelector('td.subject span.subject a') ||
                      tr.querySelector('td.subject a') || tr).textContent.trim(),
            shown: tr.style.display != 'none',
            toggle: (tr.querySelector('[id^=rcmexpando]') || {}).className || ''}));""")


def list_ready(drv) -> bool:
    return drv.execute_script(
        "return !!(window.rcmail && rcmail.message_list && !rcmail.busy"
        " && document.querySelectorAll('#messagelist tbody tr').length)")


@pytest.fixture(scope="module")
def session(webmail_for, browser):
    from selenium.webdriver.common.by import By

    web, host, inbox = webmail_for(inbox_mbox())
    browser.get(web.url)
    wait_for(browser, "the login form", lambda: browser.find_elements(By.ID, "rcmloginuser"), web)
    browser.find_element(By.ID, "rcmloginuser").send_keys("glenda")
    browser.find_element(By.ID, "rcmloginpwd").send_keys("glenda-apop")
    browser.find_element(By.ID, "rcmloginsubmit").click()
    wait_for(browser, "INBOX's message list", lambda: list_ready(browser), web)
    return web, inbox


def set_list(drv, web, sort_col: str, threads: int) -> list[dict]:
    """What the list options dialog's Save does (app.js set_list_options)."""
    drv.execute_script("rcmail.set_list_options(null, arguments[0], 'ASC', arguments[1]);",
                       sort_col, threads)
    wait_for(drv, f"the list sorted by {sort_col!r}, threads={threads}",
             lambda: list_ready(drv) and drv.execute_script(
                 "return rcmail.env.sort_col == arguments[0] && rcmail.env.threading == arguments[1]",
                 sort_col, threads), web)
    return list_rows(drv)


def test_threads_offered_and_listed(session, browser):
    from selenium.webdriver.common.by import By

    web, inbox = session
    # Roundcube offers "Threads" (list options, mode) only when the server has THREAD
    assert browser.execute_script("return rcmail.env.threads"), web.imap_log()[-3000:]
    modes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#listoptions-threads option')).map(o => o.value)")
    assert "threads" in modes
    rows = set_list(browser, web, "date", 1)
    roots = sorted(r["subject"] for r in rows if r["toggle"] == "collapsed")
    # three threads with replies, collapsed: only the roots show, each with its expander
    assert roots == ["Grüße aus Berlin", "Plan 9 release notes", "zebra crossings"], rows
    assert len([r for r in rows if r["shown"]]) == len(MESSAGES) - 4, rows
    # expanding the release notes thread shows its two replies below the root
    root = next(r for r in rows if r["subject"] == "Plan 9 release notes")
    browser.find_element(By.ID, "rcmexpando" + root["id"]).click()
    shown = wait_for(browser, "the expanded thread", lambda: [
        r["subject"] for r in list_rows(browser) if r["shown"]] if len(
            [r for r in list_rows(browser) if r["shown"]]) == len(MESSAGES) - 2 else None, web)
    at = shown.index("Plan 9 release notes")
    assert shown[at:at + 3] == ["Plan 9 release notes", "Re: Plan 9 release notes",
                                "Re: Re: Plan 9 release notes"], shown
    assert "THREAD REFERENCES" in web.imap_log().upper()


def test_subject_sort_order(session, browser):
    web, inbox = session
    rows = set_list(browser, web, "subject", 0)
    want = expected_subject_order(inbox)
    assert [r["subject"] for r in rows] == want
    assert "SORT (SUBJECT)" in web.imap_log().upper()


def test_open_message(session, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    web, inbox = session
    rows = list_rows(browser)
    target = next(r for r in rows if r["subject"] == "Grüße aus Berlin")
    ActionChains(browser).double_click(browser.find_element(By.ID, target["id"])).perform()
    wait_for(browser, "the message", lambda: browser.find_elements(By.ID, "messagebody"), web)
    header = browser.find_element(By.CSS_SELECTOR, "h2.subject").text
    assert "Grüße aus Berlin" in header
    n = [decoded(s) for s, _, _ in MESSAGES].index("Grüße aus Berlin") + 1
    assert BODY.format(n=n).strip() in browser.find_element(By.ID, "messagebody").text
