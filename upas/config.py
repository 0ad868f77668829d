"""Every environment variable the programs read, in one place.

The environment is read once per process, into a frozen `Config`: the
first `current()` builds it (every program asks while it starts: its
user, its timeouts, where its services are), and nothing reads
`os.environ` elsewhere.  A test or a launcher builds its own
(`Config.from_environ(env)`, `dataclasses.replace(cfg, ...)`), installs
it in this process with `use(cfg)`, or gives it to a child as
environment variables (`cfg.environ()`).

VARIABLES below is the list: each variable with its type, its default and
what it does.  A Config has one attribute per variable, its name in lower
case (`$UPAS_LOCK_TIMEOUT` is `cfg.upas_lock_timeout`).  Names Plan 9 and
plan9port users set already (`NAMESPACE`, `MAILROOT`, `upasfs`,
`factotum`, `auth`, `ratify`, `user`, `site`) keep their meaning; ours
are upper case and start with the program they tune.  A test knob exists
so that the tests need not wait what a production host must (the delays
that slow password guessing down, keyfs's purgatory, the index's racy
window): production leaves it alone.  docs/running.md ("Environment")
holds the table `markdown()` prints (`python -m upas.config`);
tests/test_config.py keeps the two equal.
"""
from __future__ import annotations

import dataclasses
import getpass
import os
import sys
from typing import Any, Mapping, NamedTuple

# A `#` line starts a group of variables (its kind); then per variable a
# line `NAME TYPE DEFAULT` and an indented line saying what it does.
# TYPE: `s` seconds (a number), `int`, `num`, `bool` (0 or 1), `str`;
# DEFAULT `-`: unset.
VARIABLES = """
# Plan 9
NAMESPACE  str  -
    the directory of the posted services (plan9port's; default `/tmp/ns.$USER.$DISPLAY`)
DISPLAY  str  -
    names the default name space directory when `NAMESPACE` is unset
MAILROOT  str  /mail
    the mail tree: `box/USER/`, `lib/ignore`, `ratify/`
upasfs  str  -
    dial string of upasfs (`/mail/fs`); unset: the posted `upasfs`, else one per session
factotum  str  -
    dial string of factotum; unset: the posted `factotum`
auth  str  -
    dial string of the auth server (factotum's, without `-a`)
ratify  str  -
    dial string of ratfs (`/mail/ratify`); unset: the posted `ratify`, else `$MAILROOT/ratify`
user  str  -
    the user upas/fs, imap4d and mbappend act for; unset: the login name
site  str  -
    imap4d's mail domain when `-d` is not given (with the host's domain)
# ours
IMAP4D_LOGIN_TIMEOUT  s  60
    an IMAP session not logged in by then is ended, whatever it sends
POP3_LOGIN_TIMEOUT  s  60
    the same for POP3
IMAP4D_IDLE_TIMEOUT  s  1800
    an IMAP session sending no whole command this long is logged out (RFC 3501 5.4)
POP3_IDLE_TIMEOUT  s  600
    the same for POP3, dropped with nothing deleted (RFC 1939's 10 minutes)
UPAS_IMAP_MAXLITERAL  int  67108864
    bytes in one IMAP literal after login (before login a command holds 8 KiB)
IMAP_IDLE_POLL  s  0.2
    how often IDLE looks at the mailbox and its `.imp`
IMAP4D_QUOTA  int  -
    the STORAGE limit in KiB that QUOTA reports for every user (unset: none; nothing is refused)
IMAP_APPEND_FIND_TRIES  int  40
    looks (25 ms apart) for an APPENDed message in upasfs before APPEND answers without APPENDUID
POP3_READAHEAD_TTL  s  1
    how long a message pop3 read ahead may be served from its copy
UPAS_SESSION_LOCK_TIMEOUT  s  30
    how long upasfs, imap4d and pop3 wait for `L.mbox`
UPAS_LOCK_TIMEOUT  s  300
    how long deliveries and everything else wait for it
UPASFS_READ_LOCK_WAIT  s  2
    how long upasfs's readers wait for a busy `L.mbox`, then serve what they have
UPASFS_POLL  s  15
    upasfs's background reader looks at its mailboxes this often
UPASFS_INDEX  bool  1
    `0`: upasfs keeps no index (`<box>.upasfs.imp`)
UPASFS_INDEX_DELAY  s  30
    a changing mailbox's index is rewritten at most this often
UPAS_LOGINFAIL_DIR  str  -
    failed logins per address, shared by all sessions (unset: `$NAMESPACE/loginfail`; `off`: none)
UPAS_LOGINFAIL_WINDOW  s  3600
    how long a failed attempt counts for its address
FACTOTUM_AS_TIMEOUT  s  30
    how long factotum waits for the auth server
LISTEN_GRACE  s  10
    at SIGTERM, how long the launcher lets sessions finish
LISTEN_FORKSERVER  bool  1
    `0`: the launcher execs each server instead of forking it from a fork server
FORKSERVER_STARTUP_SECS  s  30
    how long the launcher waits for a fork server to start
FSBROKER_STARTUP_SECS  s  20
    how long the upasfs broker waits for a user's upasfs to start
RUNHOST_STARTUP_SECS  s  20
    how long `make run` waits for each service to start
# test knob
POP3_DELAY_SCALE  num  1
    multiplies pop3's waits after a failed login (Plan 9's 10, 20, 40 ... s)
IMAP4D_DELAY_SCALE  num  1
    the same for imap4d
UPAS_LOGIN_DELAY_SCALE  num  1
    multiplies the per-address waits (`UPAS_LOGINFAIL_DIR`)
AUTHSRV_DELAY_SCALE  num  1
    multiplies authsrv's waits after a failure
KEYFS_PURGATORY_SCALE  num  1
    multiplies keyfs's purgatory after bad logins
UPASFS_INDEX_RACY  s  2
    an index written less than this after its mailbox changed is not trusted (timestamp ticks)
"""
KINDS = ("Plan 9", "ours", "test knob")


class Variable(NamedTuple):
    name: str             # as in the environment
    type: str             # s, int, num, bool, str
    default: Any
    kind: str             # one of KINDS
    doc: str

    @property
    def field(self) -> str:
        return self.name.lower()

    def parse(self, text: str) -> Any:
        """The value of `text`; ValueError if it is not one."""
        if self.type == "str":
            return text
        if self.type == "bool":
            if text not in ("0", "1"):
                raise ValueError(text)
            return text == "1"
        value = int(text) if self.type == "int" else float(text)
        if not value >= 0:                  # negative or NaN
            raise ValueError(text)
        return value

    def shown(self, value: Any) -> str:
        if value is None:
            return "unset"
        if self.type == "bool":
            return "1" if value else "0"
        if isinstance(value, float) and value == int(value):
            return str(int(value))
        return str(value)


_PYTHON_TYPES = {"s": float, "num": float, "int": int, "bool": bool, "str": str}
_MEANING = {"s": "a number of seconds", "num": "a number", "int": "a whole number",
            "bool": "0 or 1"}


def _variables(table: str) -> tuple[Variable, ...]:
    out, kind = [], KINDS[0]
    for line in filter(str.strip, table.splitlines()):
        if line.startswith("#"):
            kind = line[1:].strip()
            assert kind in KINDS, kind
        elif not line.startswith(" "):
            name, type_, default = line.split()
            v = Variable(name, type_, None, kind, "")
            out.append(v._replace(default=None if default == "-" else v.parse(default)))
        else:
            out[-1] = out[-1]._replace(doc=line.strip())
    return tuple(out)


BY_FIELD = {v.field: v for v in _variables(VARIABLES)}


class _Config:
    """What a Config does beyond holding the values."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None,
                     warn: Any = None) -> "Config":
        """The configuration an environment gives: unset or empty
        variables take the default, and so does a value that does not
        parse (with a line on `warn`, default stderr: a typo must not
        stop every session)."""
        env = os.environ if environ is None else environ
        values = {}
        for v in BY_FIELD.values():
            text = env.get(v.name)
            if text:
                try:
                    values[v.field] = v.parse(text)
                except ValueError:
                    print(f"upas: ${v.name}={text!r} is not {_MEANING[v.type]};"
                          f" using {v.shown(v.default)}", file=warn or sys.stderr)
        return cls(**values)

    def environ(self) -> dict[str, str]:
        """The variables that give this configuration to a child (those
        whose value is not the default)."""
        return {v.name: v.shown(getattr(self, v.field)) for v in BY_FIELD.values()
                if getattr(self, v.field) != v.default}

    @property
    def login_name(self) -> str:
        """$user, else the login name (Plan 9's getuser)."""
        return self.user or getpass.getuser()       # type: ignore[attr-defined]


Config = dataclasses.make_dataclass(
    "Config",
    [(v.field, _PYTHON_TYPES[v.type] if v.default is not None else str | None,
      dataclasses.field(default=v.default)) for v in BY_FIELD.values()],
    bases=(_Config,), frozen=True)
Config.__module__ = __name__
Config.__doc__ = "This process's settings, one attribute per variable of VARIABLES."

_current: Any = None


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
    for v in BY_FIELD.values():
        default = v.shown(v.default)
        if v.default is not None:
            default = f"`{default}`" + (" s" if v.type == "s" else "")
        doc = ("test knob: " if v.kind == "test knob" else "") + v.doc
        rows.append(f"| `{v.name}` | {default} | {doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
