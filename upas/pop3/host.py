"""What pop3 does to its process around a login, done through the namespace.

Plan 9's pop3 calls auth_chuid and newns(user), starts `upas/fs -np -f BOX`
on /mail/fs, ratifies the peer in /mail/ratify and writes syslog `pop3`.
Here: `login` builds the user's name space (confined to /mail/box/USER) and
takes the user's name for 9P attaches; `open_mailbox` either starts upasfs
for the session on a socketpair or, when `$upasfs` names a running one,
asks it to `open` the mailbox (as `mbox` for the inbox; see posted_name).
"""
from __future__ import annotations

import getpass
import os
import socket
import sys
import time
from typing import TextIO

from upas import config, fsctl
from upas import ns as nsmod
from upas.pop3.mailbox import FSROOT, FsMailbox
from upas.pop3.protocol import HostError, MailboxError
from upas.pop3.sizecache import SizeCache, cache_path
from upas.ratify.enable import enableaddr



class NamespaceHost:
    """The Host of protocol.Session for a real process."""

    def __init__(self, log: TextIO | None = None):
        self.ns: nsmod.Namespace | None = None
        self.user = ""
        self._log = log if log is not None else sys.stderr
        self._posted = bool(config.current().upasfs)
        self.ns_confined = False

    # -- newns -------------------------------------------------------------
    def login(self, user: str) -> None:
        # The stand-in for auth_chuid: from now on 9P attaches are made as
        # the user (the per-session upasfs runs as the user too).
        os.environ["user"] = os.environ["USER"] = os.environ["LOGNAME"] = user
        self.user = user
        self._newns(user)

    def _newns(self, user: str) -> nsmod.Namespace:
        try:
            if self.ns is not None:
                self.ns.close()
            self.ns = nsmod.Namespace.default(user)
            self.ns.confine(user)
            self.ns_confined = True
        except (nsmod.Error, OSError) as e:
            raise HostError(str(e)) from None
        return self.ns

    def _namespace(self) -> nsmod.Namespace:
        """-a mode has no login: the process keeps its own identity."""
        if self.ns is None:
            self.user = getpass.getuser()
            try:
                self.ns = nsmod.Namespace.default(self.user)
            except (nsmod.Error, OSError) as e:
                raise MailboxError(f"can't initialize upas/fs: {e}") from None
        return self.ns

    # -- readmbox ------------------------------------------------------------
    def open_mailbox(self, box: str) -> FsMailbox:
        ns = self._namespace()
        if self.ns_confined:
            self._check_confined(ns, box)
        path = cache_path(box, ns.user)
        sizes = SizeCache(ns, path) if path is not None else None
        if self._posted:
            name = posted_name(ns.user, box)
            self._open_posted(ns, box, name)
            return FsMailbox(ns, name, sizes)
        self._start_upasfs(ns, box)
        return FsMailbox(ns, "mbox", sizes)

    @staticmethod
    def _check_confined(ns: nsmod.Namespace, box: str) -> None:
        """upasfs resolves BOX in its own, wider name space: refuse here a
        path that leaves /mail/box/USER (a symbolic link, say)."""
        try:
            ns.local_path(box)
        except nsmod.Error as e:
            raise MailboxError(f"can't initialize upas/fs: {e}") from None

    def _start_upasfs(self, ns: nsmod.Namespace, box: str) -> None:
        """As Plan 9: unmount /mail/fs, run `upas/fs -np -f BOX` for us
        (-i: serve the socketpair on stdin).  upasfs finds /mail/... paths
        under $MAILROOT itself."""
        ns.unmount(FSROOT)
        env = dict(os.environ, user=ns.user, USER=ns.user, LOGNAME=ns.user)
        try:
            ns.mount_child(FSROOT, nsmod.python_argv("upas.fs9p", "-i", "-np", "-f", box), env=env)
        except (nsmod.Error, OSError) as e:
            msg = str(e)
            raise MailboxError(msg if msg.startswith("can't") else
                               f"can't initialize upas/fs: {msg}") from None

    def _open_posted(self, ns: nsmod.Namespace, box: str, name: str) -> None:
        """A running upasfs (the user's own, shared by its sessions):
        `open BOX NAME` in its ctl; the same BOX again is a no-op."""
        try:
            fsctl.open_mailbox(ns, box, name)
        except nsmod.Error as e:
            text = str(e)
            raise MailboxError(text, "IN-USE" if "in use" in text else "") from None

    # -- ratification, log ----------------------------------------------------
    def ratify(self, peer: str) -> None:
        """Plan 9 enableaddr: (re)create trusted/PEER#32; failures silent."""
        if self.ns is not None:
            enableaddr(self.ns, peer)

    def syslog(self, text: str) -> None:
        stamp = time.strftime("%b %e %H:%M:%S")
        try:
            self._log.write(f"{socket.gethostname()} {stamp} pop3: {text}\n")
            self._log.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        if self.ns is not None:
            self.ns.close()
            self.ns = None


def posted_name(user: str, box: str) -> str:
    """The name a shared upasfs serves BOX under: `mbox` for the user's
    inbox (as upas/fs names it), else the path below /mail/box/USER with
    `/` as `!`, so that a session on `USER/sub` never takes `mbox` away
    from one on the inbox."""
    prefix = f"/mail/box/{user}/"
    if box == f"{prefix}mbox":
        return "mbox"
    rest = box[len(prefix):] if box.startswith(prefix) else box.strip("/")
    return rest.replace("/", "!")
