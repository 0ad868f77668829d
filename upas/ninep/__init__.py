"""9P2000: our own codec, server framework, client and dial strings.

Serving a tree (see docs/design.md for the Node/Open interface)::

    srv = ninep.Server(lambda uname, aname: root,
                       auth_error="upas/fs: authentication not required")
    srv.serve_forever(ninep.post("upasfs"))   # or srv.serve_fd(0, 1)

Using one::

    with ninep.Client.dial("upasfs") as c:      # or "unix!/path", "tcp!h!564"
        c.read("mbox/1/subject")
        c.write("ctl", b"delete mbox 1")
        [d.name for d in c.readdir("mbox")]
"""
from .codec import (DMAPPEND, DMAUTH, DMDIR, DMEXCL, DMTMP, IOHDRSZ, MAXWELEM,
                    NOFID, NOTAG, OEXEC, ORCLOSE, ORDWR, OREAD, OTRUNC, OWRITE,
                    QTAPPEND, QTAUTH, QTDIR, QTEXCL, QTFILE, QTTMP,
                    ProtocolError, Qid, Stat, pack, read_msg, unpack)
from .server import PIPELINE_ANAME, Error, Node, Open, Server
from .client import Client, File, Hungup
from .dial import announce, dial, namespace_dir, post, service_path, still_open

__all__ = [
    "DMAPPEND", "DMAUTH", "DMDIR", "DMEXCL", "DMTMP", "IOHDRSZ", "MAXWELEM",
    "NOFID", "NOTAG", "OEXEC", "ORCLOSE", "ORDWR", "OREAD", "OTRUNC",
    "OWRITE", "QTAPPEND", "QTAUTH", "QTDIR", "QTEXCL", "QTFILE", "QTTMP",
    "ProtocolError", "Qid", "Stat", "pack", "read_msg", "unpack",
    "PIPELINE_ANAME", "Error", "Node", "Open", "Server", "Client", "File", "Hungup",
    "announce", "dial", "namespace_dir", "post", "service_path", "still_open",
]
