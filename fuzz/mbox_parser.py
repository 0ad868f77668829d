"""The Bell mbox split (upas/mail/mbox.scan): ranges ascend, stay inside
the buffer, begin with `From ` and do not overlap."""
from upas.mail import mbox


def target(data: bytes) -> None:
    last = 0
    for s, e in mbox.scan(data, 0, len(data)):
        assert last <= s <= e <= len(data), (last, s, e)
        assert data[s:s + 5] == b"From ", data[s:s + 10]
        last = e
        mbox.digest_of(data, s, e)
