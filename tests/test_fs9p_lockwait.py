"""upasfs waits for a busy L.mbox without blocking other readers (issue 9).

A directory read or stat makes upasfs look at the mailbox file, under
L.mbox; while deliveries kept that lock busy, the waiting reader held the
mailbox's own lock for up to UPASFS_READ_LOCK_WAIT and every walk and read
of the mailbox queued behind it (a pop3 session starved for a minute in the
stress run).  Now the wait happens without it."""
import threading
import time

from upas.mail.lock import MailLock


def test_a_reader_waiting_for_the_mail_lock_blocks_no_one(upasfs_factory):
    fs = upasfs_factory(env={"UPASFS_READ_LOCK_WAIT": "3"})
    c, other = fs.client(), fs.client()      # two sessions' connections
    digest = other.read("mbox/1/digest")
    done: dict[str, float] = {}

    def stat_dir() -> None:
        c.stat("mbox")                   # waits for L.mbox, up to 3 s
        done["stat"] = time.monotonic()

    with MailLock(fs.mailroot + "/box/glenda"):
        with open(fs.mbox, "ab") as f:   # a change for upasfs to look at
            f.write(b"From x Thu Nov 26 00:00:00 2026\nSubject: late\n\nbody\n\n")
        t = threading.Thread(target=stat_dir)
        t.start()
        time.sleep(0.3)
        assert other.read("mbox/1/digest") == digest
        done["read"] = time.monotonic()
        time.sleep(0.3)
    t.join(10)
    assert done["read"] < done["stat"]
    c.close()
    other.close()
