"""What pop3 does to its process around a login, done through the namespace.

Plan 9's pop3 calls auth_chuid and newns(user), starts `upas/fs -np -f BOX`
on /mail/fs, ratifies the peer in /mail/ratify and writes syslog `pop3`.
Here: `login` builds the user's name space (upas/mail/fsview.py: confined
to /mail/box/USER, 9P attaches made as the user); `open_mailbox` asks the
user's shared upasfs, if there is one, to `open` the mailbox under its view
name, else starts upasfs for the session on a socketpair.
"""
from __future__ import annotations

import getpass
import os
import socket
import sys
import time
from typing import TextIO

from upas import ns as nsmod
from upas.mail import fsview
from upas.pop3.mailbox import FsMailbox
from upas.pop3.protocol import HostError, MailboxError
from upas.ratify.enable import enableaddr



class NamespaceHost:
    """The Host of protocol.Session for a real process."""

    def __init__(self, log: TextIO | None = None):
        self.ns: nsmod.Namespace | None = None
        self.user = ""
        self._log = log if log is not None else sys.stderr
        self.ns_confined = False

    # -- newns -------------------------------------------------------------
    def login(self, user: str) -> None:
        self.user = user
        try:
            if self.ns is not None:
                self.ns.close()
            self.ns = fsview.newns(user)
            self.ns_confined = True
        except (nsmod.Error, OSError) as e:
            raise HostError(str(e)) from None

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
        nsmod.drop_ahead()      # ratfs dialled by the spare (pop3/spare.py), if the login's
                                # ratification (before this) did not use it
        ns = self._namespace()
        if self.ns_confined:
            self._check_confined(ns, box)
        if fsview.mount_shared(ns):
            try:
                view = fsview.FsView.open(ns, box)
            except nsmod.Error as e:
                text = str(e)
                raise MailboxError(text, "IN-USE" if "in use" in text else "") from None
        else:
            try:
                view = fsview.mount_own(ns, box)
            except (nsmod.Error, OSError) as e:
                msg = str(e)
                raise MailboxError(msg if msg.startswith("can't") else
                                   f"can't initialize upas/fs: {msg}") from None
        return FsMailbox(view)

    @staticmethod
    def _check_confined(ns: nsmod.Namespace, box: str) -> None:
        """upasfs resolves BOX in its own, wider name space: refuse here a
        path that leaves /mail/box/USER (a symbolic link, say)."""
        try:
            ns.local_path(box)
        except nsmod.Error as e:
            raise MailboxError(f"can't initialize upas/fs: {e}") from None

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
