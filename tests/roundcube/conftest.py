"""Fixtures for `make roundcube`: Debian's Roundcube 1.6 in headless
Chromium against our imap4d as `make run` starts it.

Roundcube runs from a private directory (config, sqlite database, logs,
temp files) under pytest's tmp_path, served by `php -S` on loopback with
Debian's docroot (/var/lib/roundcube/public_html) and ROUNDCUBE_CONFIG_DIR
pointing at the private config: nothing under /etc is written.  It talks
to the host's imaps port (LOGIN over TLS, the run directory's CA checked)
and logs the IMAP conversation to its log directory (imap.log), which is
printed when a test fails.  Every test is skipped, with the reason, when
php, Roundcube, Chromium, chromedriver or selenium is missing
(mk/roundcube.sh installs them).
"""
from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.host import start_host
from upas.runhost import TESTDATA

ROUNDCUBE = Path("/usr/share/roundcube")
DOCROOT = Path("/var/lib/roundcube/public_html")
DEFAULTS = Path("/etc/roundcube/defaults.inc.php")     # Debian keeps the defaults there
WAIT = 20       # seconds for any one page state to appear


def missing() -> str:
    """Why Roundcube cannot run here, or ''."""
    for prog in ("php", "chromium", "chromedriver"):
        if not shutil.which(prog):
            return f"{prog} not installed (make roundcube installs it)"
    for path in (ROUNDCUBE / "index.php", DOCROOT / "index.php", DEFAULTS,
                 ROUNDCUBE / "SQL" / "sqlite.initial.sql"):
        if not path.exists():
            return f"{path} missing: Debian's roundcube-core/roundcube-sqlite3 not installed"
    probe = subprocess.run(["php", "-m"], capture_output=True, text=True)
    if "pdo_sqlite" not in probe.stdout:
        return "php's pdo_sqlite missing (php-sqlite3)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed in the venv (make roundcube installs it)"
    return ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report ends with Roundcube's IMAP conversation."""
    rep = (yield).get_result()
    web = item.funcargs.get("session", (None,))[0] if hasattr(item, "funcargs") else None
    if rep.failed and isinstance(web, Webmail):
        rep.sections.append(("Roundcube imap.log", web.imap_log()[-8000:]))
        rep.sections.append(("Roundcube errors.log", web.errors_log()[-3000:]))


@pytest.fixture(scope="session")
def need_roundcube() -> None:
    why = missing()
    if why:
        pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _php(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_config(confdir: Path, state: Path, imaps: tuple[str, int], cafile: Path) -> None:
    host, port = imaps
    settings = {
        "db_dsnw": f"sqlite:///{state / 'roundcube.db'}?mode=0600",
        "imap_host": f"ssl://{host}:{port}",
        "log_dir": f"{state / 'logs'}/",
        "temp_dir": f"{state / 'temp'}/",
        "des_key": "upas-roundcube-test-key!",      # 24 bytes, as Roundcube wants
        "skin": "elastic",
        "product_name": "upas roundcube test",
        "log_driver": "file",
    }
    lines = ["<?php", "$config = [];"]
    lines += [f"$config[{_php(k)}] = {_php(v)};" for k, v in settings.items()]
    lines += [
        "$config['imap_debug'] = true;",
        "$config['enable_installer'] = false;",
        "$config['plugins'] = [];",
        "$config['default_list_mode'] = 'list';",
        "$config['autoexpand_threads'] = 0;",
        # the certificate names localhost and 127.0.0.1; check it with the run dir's CA
        "$config['imap_conn_options'] = ['ssl' => ['verify_peer' => true, "
        f"'verify_peer_name' => true, 'cafile' => {_php(str(cafile))}]];",
    ]
    (confdir / "config.inc.php").write_text("\n".join(lines) + "\n")
    for name in ("defaults.inc.php", "mimetypes.php"):
        src = DEFAULTS.parent / name
        if src.exists():
            (confdir / name).symlink_to(src)


def glenda_mailbox(rundir: Path, mbox: bytes) -> Path:
    """The run directory's mail: the shipped tree with glenda's INBOX
    replaced by `mbox` (runhost keeps a mail tree that is there)."""
    mail = rundir / "mail"
    shutil.copytree(TESTDATA, mail)
    inbox = mail / "box" / "glenda" / "mbox"
    inbox.write_bytes(mbox)
    return inbox


class Webmail:
    def __init__(self, url: str, state: Path):
        self.url, self.state = url, state

    def imap_log(self) -> str:
        log = self.state / "logs" / "imap.log"
        return log.read_text(errors="replace") if log.exists() else "(no imap.log)"

    def errors_log(self) -> str:
        log = self.state / "logs" / "errors.log"
        return log.read_text(errors="replace") if log.exists() else ""


def start_roundcube(tmp: Path, host) -> tuple[subprocess.Popen, Webmail]:
    state, confdir = tmp / "state", tmp / "config"
    for d in (state / "logs", state / "temp", confdir):
        d.mkdir(parents=True)
    write_config(confdir, state, host.addrs["imaps"], host.cafile)
    db = sqlite3.connect(state / "roundcube.db")
    db.executescript((ROUNDCUBE / "SQL" / "sqlite.initial.sql").read_text())
    db.close()
    port = free_port()
    env = dict(os.environ, ROUNDCUBE_CONFIG_DIR=str(confdir))
    with open(state / "logs" / "php-server.log", "wb") as log:
        php = subprocess.Popen(["php", "-S", f"127.0.0.1:{port}", "-t", str(DOCROOT)],
                               env=env, stdout=subprocess.DEVNULL, stderr=log)
    end = time.monotonic() + WAIT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if php.poll() is not None or time.monotonic() > end:
                php.kill()
                raise RuntimeError("php -S did not start: "
                                   + (state / "logs" / "php-server.log").read_text())
            time.sleep(0.05)
    return php, Webmail(f"http://127.0.0.1:{port}/", state)


@pytest.fixture(scope="module")
def webmail_for(need_roundcube, tmp_path_factory):
    """webmail_for(mbox) -> (Webmail, host, inbox path): our host with
    glenda's INBOX holding mbox, and Roundcube pointed at its imaps port."""
    started = []

    def start(mbox: bytes):
        tmp = tmp_path_factory.mktemp("roundcube")
        inbox = glenda_mailbox(tmp / "run", mbox)
        host = start_host(tmp / "run")
        started.append(host)
        php, web = start_roundcube(tmp, host)
        started.append(php)
        return web, host, inbox

    yield start
    for thing in reversed(started):
        if isinstance(thing, subprocess.Popen):
            thing.terminate()
            thing.wait(5)
        else:
            thing.stop()


@pytest.fixture(scope="module")
def browser(need_roundcube, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--lang=en-US",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
    drv.implicitly_wait(0)
    try:
        yield drv
    finally:
        drv.quit()
