"""Every environment variable the programs read, in one place.

The environment is read once per process, into a frozen `Config`: the
first `current()` builds it (every program asks while it starts: its
user, its timeouts, where its services are), and nothing reads
`os.environ` elsewhere.  A test or a launcher builds its own
(`Config.from_environ(env)`, `dataclasses.replace(cfg, ...)`), installs
it in this process with `use(cfg)`, or gives it to a child as
environment variables (`cfg.environ()`).

Names Plan 9 and plan9port users set already (`NAMESPACE`, `MAILROOT`,
`upasfs`, `factotum`, `auth`, `ratify`, `user`, `site`) keep their
meaning; ours are upper case and start with the program they tune.  A
test knob exists so that the tests need not wait what a production
host must (the delays that slow password guessing down, keyfs's
purgatory, the index's racy window); it is marked `test` and left alone
in production.  docs/running.md ("Environment") holds the table
`markdown()` prints (`python -m upas.config`); tests/test_config.py
keeps the two equal.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

PLAN9, OURS, TEST = "Plan 9", "ours", "test"


def _var(env: str, default: Any, doc: str, kind: str = OURS, unit: str = "") -> Any:
    """A field read from the variable `env`; its type is its default's
    (str when the default is None); `unit` is shown after the default."""
    return field(default=default, metadata={"env": env, "doc": doc, "kind": kind, "unit": unit})


@dataclass(frozen=True)
class Config:
    # -- where things are: Plan 9 / plan9port names ---------------------------
    namespace: str | None = _var(
        "NAMESPACE", None, "the name space directory holding the posted services "
        "(plan9port; default `/tmp/ns.$USER.$DISPLAY`)", PLAN9)
    display: str | None = _var(
        "DISPLAY", None, "names the default name space directory when `NAMESPACE` is unset",
        PLAN9)
    mailroot: str = _var("MAILROOT", "/mail", "the mail tree: `box/USER/`, `lib/ignore`, "
                         "`ratify/`", PLAN9)
    upasfs: str | None = _var(
        "upasfs", None, "dial string of the mail file server (`/mail/fs`); unset: the posted "
        "`upasfs`, else one started per session", PLAN9)
    factotum: str | None = _var(
        "factotum", None, "dial string of factotum; unset: the posted `factotum`", PLAN9)
    auth: str | None = _var(
        "auth", None, "dial string of the auth server (factotum's, without `-a`)", PLAN9)
    ratify: str | None = _var(
        "ratify", None, "dial string of ratfs (`/mail/ratify`); unset: the posted `ratify`, "
        "else `$MAILROOT/ratify`", PLAN9)
    user: str | None = _var(
        "user", None, "the user upas/fs, imap4d and mbappend act for; unset: the login name",
        PLAN9)
    site: str | None = _var(
        "site", None, "imap4d's mail domain when `-d` is not given (with the host's domain)",
        PLAN9)

    # -- limits and timeouts ---------------------------------------------------
    imap4d_login_timeout: float = _var(
        "IMAP4D_LOGIN_TIMEOUT", 60.0, "an IMAP session not logged in by then is ended, "
        "whatever it sends", unit="s")
    pop3_login_timeout: float = _var(
        "POP3_LOGIN_TIMEOUT", 60.0, "the same for POP3", unit="s")
    imap4d_idle_timeout: float = _var(
        "IMAP4D_IDLE_TIMEOUT", 1800.0, "an IMAP session that sends no whole command for this "
        "long is logged out (RFC 3501 5.4)", unit="s")
    pop3_idle_timeout: float = _var(
        "POP3_IDLE_TIMEOUT", 600.0, "a POP3 session silent this long is dropped, nothing "
        "deleted (RFC 1939's 10 minutes; bytes alone restart neither timer)", unit="s")
    imap_maxliteral: int = _var(
        "UPAS_IMAP_MAXLITERAL", 64 << 20, "bytes in one IMAP literal after login (before "
        "login a command holds 8 KiB)")
    imap_idle_poll: float = _var(
        "IMAP_IDLE_POLL", 0.2, "how often IDLE looks at the mailbox and its `.imp`", unit="s")
    imap_append_find_tries: int = _var(
        "IMAP_APPEND_FIND_TRIES", 40, "looks (25 ms apart) for an APPENDed message in upasfs "
        "before APPEND answers without APPENDUID")
    pop3_readahead_ttl: float = _var(
        "POP3_READAHEAD_TTL", 1.0, "how long a message pop3 read ahead may be served from its "
        "copy", unit="s")
    session_lock_timeout: float = _var(
        "UPAS_SESSION_LOCK_TIMEOUT", 30.0, "how long upasfs, imap4d and pop3 wait for "
        "`L.mbox`", unit="s")
    lock_timeout: float = _var(
        "UPAS_LOCK_TIMEOUT", 300.0, "how long deliveries and everything else wait for it",
        unit="s")
    upasfs_read_lock_wait: float = _var(
        "UPASFS_READ_LOCK_WAIT", 2.0, "how long upasfs's readers wait for a busy `L.mbox` "
        "before serving the state they have", unit="s")
    upasfs_poll: float = _var(
        "UPASFS_POLL", 15.0, "upasfs's background reader looks at its mailboxes this often",
        unit="s")
    upasfs_index: bool = _var(
        "UPASFS_INDEX", True, "`0`: upasfs keeps no index (`<box>.upasfs.imp`)")
    upasfs_index_delay: float = _var(
        "UPASFS_INDEX_DELAY", 30.0, "a changing mailbox's index is rewritten at most this "
        "often", unit="s")
    loginfail_dir: str | None = _var(
        "UPAS_LOGINFAIL_DIR", None, "failed logins per address, shared by every pop3 and "
        "imap4d session; unset: `$NAMESPACE/loginfail`; `off`: only Plan 9's "
        "per-connection delays")
    loginfail_window: float = _var(
        "UPAS_LOGINFAIL_WINDOW", 3600.0, "how long a failed attempt counts for its address",
        unit="s")
    factotum_as_timeout: float = _var(
        "FACTOTUM_AS_TIMEOUT", 30.0, "how long factotum waits for the auth server", unit="s")
    listen_grace: float = _var(
        "LISTEN_GRACE", 10.0, "at SIGTERM, how long the launcher lets sessions finish", unit="s")
    listen_forkserver: bool = _var(
        "LISTEN_FORKSERVER", True, "`0`: the launcher execs each server instead of forking "
        "it from a fork server")
    forkserver_startup: float = _var(
        "FORKSERVER_STARTUP_SECS", 30.0, "how long the launcher waits for a fork server to "
        "start", unit="s")
    fsbroker_startup: float = _var(
        "FSBROKER_STARTUP_SECS", 20.0, "how long the upasfs broker waits for a user's upasfs "
        "to start", unit="s")
    runhost_startup: float = _var(
        "RUNHOST_STARTUP_SECS", 20.0, "how long `make run` waits for each service to start",
        unit="s")

    # -- test knobs: production leaves them alone -------------------------------
    pop3_delay_scale: float = _var(
        "POP3_DELAY_SCALE", 1.0, "multiplies pop3's waits after a failed login "
        "(Plan 9's 10, 20, 40 ... s)", TEST)
    imap4d_delay_scale: float = _var(
        "IMAP4D_DELAY_SCALE", 1.0, "the same for imap4d", TEST)
    login_delay_scale: float = _var(
        "UPAS_LOGIN_DELAY_SCALE", 1.0, "multiplies the per-address waits (`UPAS_LOGINFAIL_DIR`)",
        TEST)
    authsrv_delay_scale: float = _var(
        "AUTHSRV_DELAY_SCALE", 1.0, "multiplies authsrv's waits after a failure", TEST)
    keyfs_purgatory_scale: float = _var(
        "KEYFS_PURGATORY_SCALE", 1.0, "multiplies keyfs's purgatory after bad logins", TEST)
    upasfs_index_racy: float = _var(
        "UPASFS_INDEX_RACY", 2.0, "a mailbox changed less than this before its index was "
        "written is read again (a write within the file system's timestamp granularity)",
        TEST, unit="s")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None,
                     warn: Any = None) -> "Config":
        """The configuration an environment gives: unset or empty
        variables take the default, and so does a value that does not
        parse (with a line on `warn`, default stderr: a typo must not
        stop every session)."""
        env = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            text = env.get(f.metadata["env"])
            if text:
                try:
                    values[f.name] = _parse(f.default, text)
                except ValueError:
                    print(f"upas: ${f.metadata['env']}={text!r} is not {_kind_name(f.default)};"
                          f" using {_shown(f.default)}", file=warn or sys.stderr)
        return cls(**values)

    def environ(self) -> dict[str, str]:
        """The variables that give this configuration to a child (those
        whose value is not the default)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v != f.default:
                out[f.metadata["env"]] = ("1" if v else "0") if isinstance(v, bool) else str(v)
        return out

    @property
    def login_name(self) -> str:
        """$user, else the login name (Plan 9's getuser)."""
        if self.user:
            return self.user
        import getpass
        return getpass.getuser()


def _parse(default: Any, text: str) -> Any:
    if isinstance(default, bool):
        return text != "0"
    if isinstance(default, (int, float)):
        value = type(default)(float(text)) if isinstance(default, float) else int(text)
        if value < 0 or value != value:
            raise ValueError(text)
        return value
    return text


def _kind_name(default: Any) -> str:
    if isinstance(default, bool):
        return "0 or 1"
    if isinstance(default, int):
        return "a whole number"
    return "a number"


def _shown(default: Any) -> str:
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, float) and default == int(default):
        return str(int(default))
    return str(default)


_current: Config | None = None


def current() -> Config:
    """This process's configuration: the one installed by use(), else the
    environment's, read the first time it is asked for."""
    global _current
    if _current is None:
        _current = Config.from_environ()
    return _current


def use(cfg: Config | None) -> None:
    """Install cfg as this process's configuration (None: read the
    environment again at the next current())."""
    global _current
    _current = cfg


def markdown() -> str:
    """The table of docs/running.md ("Environment")."""
    rows = ["| variable | default | what |", "|---|---|---|"]
    for f in dataclasses.fields(Config):
        m = f.metadata
        default = "unset" if f.default is None else f"`{_shown(f.default)}`"
        if m["unit"]:
            default += f" {m['unit']}"
        doc = ("test knob: " if m["kind"] == TEST else "") + m["doc"]
        rows.append(f"| `{m['env']}` | {default} | {doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
