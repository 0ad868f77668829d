"""`make run`: a complete local mail host from one command.

    python -m upas.runhost [-fKs] [-d rundir] [-h host] [-p pop3,imap,pop3s,imaps]
        [-R all|store|frontend] [-S storehost] [-U user]

Creates the run directory (default ./run), copies testdata/mail into it
(-f: a fresh copy even if one is there; the shipped mail is never touched),
writes the demo keys file (auth/demo.py), starts keyfs, the auth server,
factotum (holding the host's p9sk1 key), ratfs and the launcher on loopback
ports with a certificate made on the spot, and prints how to connect.
Ctrl-C or SIGTERM stops everything it started.  Ports 0 mean "any free
port"; the ports actually used are printed (tests/fixtures/host.py uses that).
The launcher keeps one upasfs per user alive across sessions (its -u);
-s starts one upasfs per session instead, as Plan 9's pop3 does.  Each
session is its own process, forked from the launcher's fork server
(upas/forkserver.py; LISTEN_FORKSERVER=0 in the environment: exec'd).

-R splits the host in two, the Plan 9 way to outgrow one machine: `store`
keeps the mail and serves the auth server, factotum, ratfs and the mail
(the upasfs broker: each user's upasfs; -U USER: only that user's upasfs;
boxfs: /mail/box) over TCP at -h on the STORE_PORTS; `frontend` runs only
the launcher, its servers reaching those on -S storehost through $auth,
$factotum, $ratify, $upasfs and $boxfs.  -K: the frontend's mail/box is
the store's /mail/box mounted by the kernel (9pfuse of boxfs, tested;
NFS, v9fs; docs/running.md), used instead of boxfs.
"""
from __future__ import annotations

import getopt
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from auth import demo
from lib import cmdline, secretfile
from upas import config, fsbroker, listen

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO / "testdata" / "mail"
PORTS = {"pop3": 11110, "imap4d": 11143, "pop3s": 11995, "imaps": 11993}
STORE_PORTS = {"auth": 11567, "factotum": 11568, "ratify": 11569, "upasfs": 11570,
               "boxfs": 11571}
ROLES = ("all", "store", "frontend")
HOST_KEY = (f"key proto=p9sk1 dom={demo.AUTHDOM} user={demo.HOSTID} "
            f"!password={demo.HOST_PASSWORD}\n")
USAGE = ("usage: runhost [-fKs] [-d rundir] [-h host] [-p pop3,imap,pop3s,imaps] "
         "[-R all|store|frontend] [-S storehost] [-U user]")


class StartError(Exception):
    pass


def _wait(what: str, ready, proc: subprocess.Popen) -> None:
    startup = config.current().runhost_startup_secs
    end = time.monotonic() + startup
    while not ready():
        if proc.poll() is not None:
            raise StartError(f"{what} exited with status {proc.returncode}")
        if time.monotonic() > end:
            raise StartError(f"{what} did not start in {startup:.0f}s")
        time.sleep(0.05)


def _pdeathsig():
    """A function for a child to call between fork and exec: SIGTERM when
    runhost dies, however it dies (Linux's PR_SET_PDEATHSIG; runhost starts
    its services from its main thread, which lives as long as it does), so
    that a killed runhost leaves no service holding its ports for the next
    one.  None elsewhere.  prctl is looked up here, in the parent: the
    child of a threaded process must not load libraries."""
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG


def _answers(addr: str) -> bool:
    """Does the dial string unix!PATH or tcp!HOST!PORT accept a connection?"""
    net, _, rest = addr.partition("!")
    if net == "unix":
        family, target = socket.AF_UNIX, rest
    else:
        h, _, port = rest.partition("!")
        family, target = socket.AF_INET6 if ":" in h else socket.AF_INET, (h, int(port))
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.connect(target)
        except OSError:
            return False
    return True


def _first_line(p: subprocess.Popen, what: str) -> str:
    timer = threading.Timer(config.current().runhost_startup_secs, p.kill)
    timer.start()
    try:
        line = p.stdout.readline().strip()
    finally:
        timer.cancel()
    if not line:
        raise StartError(f"{what} exited with status {p.wait()}")
    return line


def make_certificate(directory: Path, host: str) -> tuple[Path, Path, str]:
    """A self-signed server certificate: (PEM with key and chain, CA file
    for clients, which tool made it).  openssl if installed, else trustme."""
    pem, ca = directory / "server.pem", directory / "ca.pem"
    san = f"subjectAltName=DNS:localhost,IP:{host}" if _is_ip(host) else \
        f"subjectAltName=DNS:localhost,DNS:{host}"
    if shutil.which("openssl"):
        key, cert = directory / "server.key", directory / "server.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "30",
                        "-subj", "/CN=localhost", "-addext", san],
                       check=True, capture_output=True)
        secretfile.write(pem, key.read_bytes() + cert.read_bytes())
        key.unlink()
        shutil.copyfile(cert, ca)
        return pem, ca, "openssl"
    try:
        import trustme
    except ImportError:
        raise StartError("need the openssl command or the trustme module "
                         "to make a certificate") from None
    authority = trustme.CA()
    leaf = authority.issue_cert("localhost", host)
    secretfile.write(pem, leaf.private_key_and_cert_chain_pem.bytes())
    authority.cert_pem.write_to_path(str(ca))
    return pem, ca, "trustme"


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def owner_only(root: Path) -> None:
    """The mail tree as the servers make it: directories 0700, files 0600
    (a copy keeps the repository's 0755/0644, which let every local user
    read every mailbox; docs/running.md)."""
    os.chmod(root, 0o700)
    for d, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(d, name), 0o700)
        for name in files:
            path = os.path.join(d, name)
            if not os.path.islink(path):
                os.chmod(path, 0o600)


def _namespace_dir(rundir: Path) -> str:
    """$rundir/ns, unless that is too long for a unix socket path."""
    ns = rundir / "ns"
    if len(str(ns)) > 80:
        return tempfile.mkdtemp(prefix="ns.upas.", dir="/tmp")
    ns.mkdir(mode=0o700, exist_ok=True)
    os.chmod(ns, 0o700)
    return str(ns)


@dataclass
class Host:
    rundir: Path
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(PORTS))
    fresh: bool = False
    logdir: Path | None = None          # None: servers log to our stderr
    extra_env: dict[str, str] = field(default_factory=dict)
    role: str = "all"
    storehost: str = ""                 # frontend: where the store's services are
    user: str = ""                      # store -U: serve only this user's upasfs
    kernel_mount: bool = False          # frontend -K: mail/box is the store's, mounted
    keep_fs: bool = True                # launcher -u: a upasfs per user, kept alive
    listen_flags: list[str] = field(default_factory=list)   # more launcher flags (-M, -F)
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    addrs: dict[str, tuple[str, int]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    certmaker: str = ""

    # -- paths
    @property
    def mailroot(self) -> Path:
        return self.rundir / "mail"

    @property
    def certfile(self) -> Path:
        return self.rundir / "tls" / "server.pem"

    @property
    def cafile(self) -> Path:
        return self.rundir / "tls" / "ca.pem"

    # -- start / stop
    def start(self) -> "Host":
        steps = {"all": (self._start_keyfs, self._start_authsrv, self._start_factotum,
                         self._start_ratfs, self._start_launcher),
                 "store": (self._start_keyfs, self._start_authsrv, self._start_factotum,
                           self._start_ratfs, self._start_upasfs, self._start_boxfs),
                 "frontend": (self._use_store, self._start_launcher)}[self.role]
        try:
            self._prepare()
            for step in steps:
                step()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare(self) -> None:
        self.rundir = self.rundir.resolve()
        self.rundir.mkdir(parents=True, exist_ok=True)
        if self.fresh and self.role != "frontend" and self.mailroot.exists():
            shutil.rmtree(self.mailroot)    # (a frontend's mail/box may be the store's)
        if self.role == "frontend":         # the mail is the store's
            self.mailroot.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.kernel_mount and not (self.mailroot / "box").is_dir():
                raise StartError(f"-K: mount the store's /mail/box on {self.mailroot / 'box'}")
        else:
            if not self.mailroot.exists():
                shutil.copytree(TESTDATA, self.mailroot)
            lib = self.mailroot / "lib"
            lib.mkdir(exist_ok=True)
            for name in ("blocked", "smtpd.conf.ext"):
                (lib / name).touch()
            owner_only(self.mailroot)
        (self.rundir / "tls").mkdir(mode=0o700, exist_ok=True)
        _, _, self.certmaker = make_certificate(self.rundir / "tls", self.host)
        if self.logdir:
            self.logdir.mkdir(parents=True, exist_ok=True)
        ns = _namespace_dir(self.rundir)
        self.env = dict(os.environ, NAMESPACE=ns, MAILROOT=str(self.mailroot),
                        factotum=f"unix!{ns}/factotum", PYTHONUNBUFFERED="1",
                        **self.extra_env)
        self.env.pop("upasfs", None)   # each session starts its own upasfs
        self.files = demo.make_demo(str(self.rundir / "auth"))

    def _addr(self, name: str) -> str:
        """Where a service is served: posted locally, or on TCP for a store."""
        if self.role == "store":
            return f"tcp!{self.host}!{STORE_PORTS[name]}"
        return name

    def _dialstring(self, name: str) -> str:
        addr = self._addr(name)
        return addr if "!" in addr else f"unix!{self.env['NAMESPACE']}/{addr}"

    def _use_store(self) -> None:
        """A frontend: every service but the launcher is the store's."""
        if not self.storehost:
            raise StartError("a frontend needs -S storehost")
        for name, port in STORE_PORTS.items():
            if not (name == "boxfs" and self.kernel_mount):
                self.env[name] = f"tcp!{self.storehost}!{port}"

    def _spawn(self, name: str, argv: list[str], **kw) -> subprocess.Popen:
        if self.logdir and "stderr" not in kw:
            kw["stderr"] = open(self.logdir / f"{name}.log", "ab")
        kw.setdefault("env", self.env)
        proc = subprocess.Popen(argv, start_new_session=True, preexec_fn=_pdeathsig(), **kw)
        if "stderr" in kw and hasattr(kw["stderr"], "close"):
            kw["stderr"].close()
        self.procs.append((name, proc))
        return proc

    def _start_keyfs(self) -> None:
        p = self._spawn("keyfs", [sys.executable, "-m", "auth.keyfs", "-k", self.files.authkey,
                                  self.files.keys])
        _wait("keyfs", lambda: _answers(f"unix!{self.env['NAMESPACE']}/keys"), p)

    def _start_authsrv(self) -> None:
        port = STORE_PORTS["auth"] if self.role == "store" else self.ports.get("auth", 0)
        p = self._spawn("authsrv", [sys.executable, "-m", "auth.authsrv",
                                    "-a", f"tcp!{self.host}!{port}", "-k", "keys",
                                    "-D", demo.AUTHDOM, "-u", self.files.speaksfor],
                        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        # authsrv prints the address it announced (port 0 resolved)
        addr = _first_line(p, "authsrv")
        if not addr.startswith("tcp!"):
            raise StartError(f"authsrv said {addr!r}")
        self.env["auth"] = addr
        _, h, port = addr.split("!")
        self.addrs["auth"] = (h, int(port))

    def _start_factotum(self) -> None:
        # The host key goes through a pipe: no secret is written to disk.
        r, w = os.pipe()
        p = self._spawn("factotum", [sys.executable, "-m", "auth.factotum",
                                     "-a", self.env["auth"], "-k", f"/dev/fd/{r}",
                                     "-s", self._addr("factotum")], pass_fds=(r,))
        os.close(r)
        with os.fdopen(w, "w") as f:
            f.write(HOST_KEY)
        self.env["factotum"] = self._dialstring("factotum")
        _wait("factotum", lambda: _answers(self.env["factotum"]), p)

    def _start_ratfs(self) -> None:
        lib = self.mailroot / "lib"
        p = self._spawn("ratfs", [sys.executable, "-m", "upas.ratify", "-s", self._addr("ratify"),
                                  "-c", str(lib / "smtpd.conf.ext"), "-f", str(lib / "blocked")])
        _wait("ratfs", lambda: _answers(self._dialstring("ratify")), p)

    def _start_upasfs(self) -> None:
        """The store's mail for the frontends: with -U, that user's upasfs on
        TCP; else the broker (upas/fsbroker.py) handing each session to its
        user's upasfs."""
        addr = self._addr("upasfs")
        if self.user:
            env = dict(self.env, user=self.user, USER=self.user, LOGNAME=self.user)
            argv = [sys.executable, "-m", "upas.fs9p", "-n", "-p", "-m", addr]
        else:
            env, argv = self.env, [sys.executable, "-m", "upas.fsbroker", "-s", addr]
        p = self._spawn("upasfs", argv, env=env)
        _wait("upasfs", lambda: _answers(addr), p)

    def _start_boxfs(self) -> None:
        """The store's /mail/box for the frontends' imap4d (upas/boxfs.py)."""
        addr = self._addr("boxfs")
        p = self._spawn("boxfs", [sys.executable, "-m", "upas.boxfs", "-s", addr])
        _wait("boxfs", lambda: _answers(addr), p)

    def _start_launcher(self) -> None:
        argv = [sys.executable, "-m", "upas.listen", "-t", str(self.certfile)]
        if self.keep_fs and "upasfs" not in self.env:
            argv.append("-u")
        argv += self.listen_flags
        for name, port in self.ports.items():
            if name in PORTS:
                argv += ["-l", f"{name}=tcp!{self.host}!{port}"]
        argv += [n for n in PORTS if n in self.ports]
        p = self._spawn("listen", argv, stdout=subprocess.PIPE, text=True)
        timer = threading.Timer(config.current().runhost_startup_secs, p.kill)
        timer.start()
        try:
            for line in p.stdout:
                words = line.split()
                if words[:1] == ["announce"]:
                    _, host, port = words[2].split("!")
                    self.addrs[words[1]] = (host, int(port))
                elif words[:1] == ["ready"]:
                    break
        finally:
            timer.cancel()
        if p.poll() is not None:
            raise StartError(f"listen exited with status {p.returncode}")

    def stop(self) -> None:
        """SIGTERM everything we started, newest first; SIGKILL stragglers."""
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(timeout=config.current().listen_grace + 5 if name == "listen" else 5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()
        self.procs.clear()
        ns = self.env.get("NAMESPACE", "")
        if ns:      # a broker killed before us left its users' upasfs
            fsbroker.stop_all(list(fsbroker.running(ns).values()))
        if ns.startswith("/tmp/ns.upas."):
            shutil.rmtree(ns, ignore_errors=True)

    def dead(self) -> list[str]:
        return [name for name, p in self.procs if p.poll() is not None]

    # -- what to tell the user
    def instructions(self) -> str:
        if self.role == "store":
            return "\n".join(
                [f"upas mail store running; run directory {self.rundir}"] +
                [f"  {name:9} tcp!{self.host}!{port}" for name, port in STORE_PORTS.items()] +
                [f"frontends: python -m upas.runhost -R frontend -S {self.host}",
                 "Ctrl-C stops everything."])
        h = self.host
        port = {n: a[1] for n, a in self.addrs.items()}
        users = "\n".join(f"    {u:8} mail secret (APOP, CRAM-MD5, LOGIN/PASS) {s!r:16}"
                          f" login password {pw!r}" for u, (pw, s) in demo.USERS.items())
        lines = self._what_runs() + [
            f"  certificate  {self.certfile} (made with {self.certmaker}); "
            f"clients trust {self.cafile}",
            "",
            f"  host {h}",
        ]
        for name, what in (("pop3", "POP3, APOP; STLS then USER/PASS"),
                           ("imap4d", "IMAP4rev1, AUTHENTICATE CRAM-MD5; STARTTLS"),
                           ("pop3s", "POP3 over TLS, USER/PASS or APOP"),
                           ("imaps", "IMAP over TLS, LOGIN or CRAM-MD5")):
            if name in port:
                lines.append(f"    {port[name]:<6} {what}")
        lines += ["", "  users", users, ""]
        if "imaps" in port:
            lines.append("  mutt:\n    " + _mutt_command(self.cafile, h, port["imaps"]))
        if "pop3" in port:
            lines.append("  fetchmail (APOP; the messages stay on the server, each is written "
                         "byte for byte to a file of fetchmail/apop/):\n    " + _fetchmail_command(
                             self.rundir, "apop", f"poll {h} service {port['pop3']} protocol APOP "
                             "user glenda password glenda-apop"))
        if "pop3s" in port:
            lines.append("  fetchmail over TLS (USER/PASS; to fetchmail/tls/):\n    "
                         + _fetchmail_command(
                             self.rundir, "tls", f"poll {h} service {port['pop3s']} protocol POP3 user glenda "
                             f"password glenda-apop ssl sslcertfile {self.cafile} sslcertck "
                             "sslcommonname localhost"))
        lines += ["", "Ctrl-C stops everything."]
        return "\n".join(lines)


    def _what_runs(self) -> list[str]:
        """Where the mail and the services are: here, or on the store."""
        if self.role == "frontend":
            s = self.storehost
            box = (f"mounted on {self.mailroot / 'box'}" if self.kernel_mount
                   else f"over 9P ({self.env['boxfs']})")
            return [
                f"upas mail frontend running; run directory {self.rundir}",
                f"  mail store   on {s}: /mail/box {box}, upasfs {self.env['upasfs']}",
                f"  auth server  {self.env['auth']}  (the store's; auth domain {demo.AUTHDOM})",
                f"  factotum     {self.env['factotum']}  (the store's)",
                f"  ratfs        {self.env['ratify']}  (the store's)",
                f"  name space   NAMESPACE={self.env['NAMESPACE']}  ({self._frontend_ns()})",
            ]
        return [
            f"upas mail host running; run directory {self.rundir}",
            f"  mail store   {self.mailroot} (a copy of testdata/mail)",
            f"  name space   NAMESPACE={self.env['NAMESPACE']}  (keys, factotum, ratify)",
            f"  auth server  {self.env['auth']}  (auth domain {demo.AUTHDOM})",
            f"  factotum     {self.env['factotum']}",
        ]


    def _frontend_ns(self) -> str:
        """What a frontend keeps in its name space directory."""
        lf = config.Config.from_environ(self.env).upas_loginfail_dir
        if lf == "off":
            return "nothing: every service is the store's"
        if lf:
            return f"nothing: every service is the store's; failed logins in {lf}"
        return "failed logins per address; every service is the store's"


def _mutt_command(cafile: Path, host: str, port: int) -> str:
    """mutt on glenda's INBOX over TLS (tests/test_clients_runhost.py runs
    it as printed)."""
    settings = (f"set ssl_ca_certificates_file={cafile}; set imap_pass=glenda-apop; "
                f"set folder=imaps://glenda@{host}:{port}/; set spoolfile=+INBOX")
    return f"mutt -n -F /dev/null -e {shlex.quote(settings)} -f +INBOX"


def _fetchmail_command(rundir: Path, name: str, poll: str) -> str:
    """A shell command that writes a fetchmail rc file holding `poll` and
    runs fetchmail on it, each message going to its own file.  It asks for
    the bytes as served: --norewrite (fetchmail would add @host to bare
    addresses such as `To: glenda`) and --invisible (no Received: line of
    its own); tests/test_clients_runhost.py runs it as printed."""
    q = shlex.quote
    out, rc = rundir / "fetchmail" / name, rundir / "fetchmail" / f"{name}rc"
    mda = f"cat > {q(str(out))}/$$"
    return (f"mkdir -p {q(str(out))} && printf '%s\\n' {q(poll)} > {q(str(rc))} && "
            f"chmod 600 {q(str(rc))} && fetchmail -f {q(str(rc))} --keep --fetchall "
            f"--norewrite --invisible --mda {q(mda)}")


def parse_args(argv: list[str]) -> Host:
    opts, args = getopt.getopt(argv, "fKsd:h:p:R:S:U:")
    if args:
        raise getopt.GetoptError("no arguments expected")
    host = Host(Path("run"))
    for k, v in cmdline.assign(host, opts, {"-f": "fresh", "-K": "kernel_mount"},
                               {"-h": "host", "-S": "storehost", "-U": "user"}):
        if k == "-s":
            host.keep_fs = False
        elif k == "-d":
            host.rundir = Path(v)
        elif k == "-p":
            nums = v.split(",")
            if len(nums) != 4 or not all(n.isdigit() for n in nums):
                raise getopt.GetoptError("-p wants four port numbers")
            host.ports = dict(zip(PORTS, map(int, nums)))
        elif k == "-R":
            if v not in ROLES:
                raise getopt.GetoptError(f"-R wants one of {', '.join(ROLES)}")
            host.role = v
    return host


def main(argv: list[str] | None = None) -> int:
    try:
        host = parse_args(sys.argv[1:] if argv is None else argv)
    except getopt.GetoptError as e:
        print(f"runhost: {e}\n{USAGE}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):   # HUP: terminal closed
        signal.signal(sig, lambda *_: stop.set())
    try:
        host.start()
    except (StartError, OSError, subprocess.CalledProcessError) as e:
        print(f"runhost: {e}", file=sys.stderr)
        return 1
    print(host.instructions(), flush=True)
    while not stop.wait(0.5):
        if host.dead():
            print(f"runhost: {', '.join(host.dead())} exited; stopping", file=sys.stderr)
            host.stop()
            return 1
    print("\nrunhost: stopping", file=sys.stderr)
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
