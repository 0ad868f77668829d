"""`make run` as a user runs it: python -m upas.runhost prints how to
connect, serves, and Ctrl-C stops everything it started; the shipped test
mail is never modified."""
import hashlib
import os
import poplib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)
TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "mail"


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def children_of(pid: int) -> set[int]:
    """Every live process whose parent chain reaches pid."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                out.add(c)
                todo.append(c)
    return out


def test_make_run_prints_serves_and_stops(tmp_path):
    before = tree_digest(TESTDATA)
    env = dict(os.environ, POP3_DELAY_SCALE="0", LISTEN_GRACE="1")
    proc = subprocess.Popen([sys.executable, "-m", "upas.runhost", "-d", str(tmp_path / "run"),
                             "-p", "0,0,0,0"], env=env, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL)
    out = []
    try:
        for line in proc.stdout:
            out.append(line)
            if line.startswith("Ctrl-C stops everything"):
                break
        text = "".join(out)
        assert "glenda" in text and "glenda-apop" in text and "bob-apop" in text
        assert re.search(r"^  mutt:\n    mutt .*imaps://glenda@127\.0\.0\.1:\d+/", text, re.M)
        assert re.search(r"fetchmail -f \S+ --keep", text)
        port = int(re.search(r"^    (\d+) +POP3, APOP", text, re.M).group(1))
        p = poplib.POP3("127.0.0.1", port, timeout=20)
        chal = re.search(rb"<[^>]+>", p.getwelcome()).group(0)
        assert p._shortcmd("APOP bob " + hashlib.md5(chal + b"bob-apop").hexdigest()
                           ).startswith(b"+OK")
        n, _ = p.stat()
        p.dele(1)
        p.quit()
        kids = children_of(proc.pid)
        assert len(kids) >= 5              # keyfs authsrv factotum ratfs listen
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        end = time.monotonic() + 10
        while time.monotonic() < end and any(Path(f"/proc/{k}").exists() for k in kids):
            time.sleep(0.1)
        alive = [k for k in kids if Path(f"/proc/{k}").exists()
                 and "Z" not in Path(f"/proc/{k}/stat").read_text().rsplit(")", 1)[1][:3]]
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the copy changed (a message deleted), the shipped mail did not
    bob = (tmp_path / "run" / "mail" / "box" / "bob" / "mbox").read_bytes()
    assert bob.count(b"\nFrom ") + bob.startswith(b"From ") == n - 1
    assert tree_digest(TESTDATA) == before
