"""9P2000: our own codec, server framework, client and dial strings."""
from .codec import (DMAPPEND, DMAUTH, DMDIR, DMEXCL, DMTMP, IOHDRSZ, MAXWELEM,
                    NOFID, NOTAG, OEXEC, ORCLOSE, ORDWR, OREAD, OTRUNC, OWRITE,
                    QTAPPEND, QTAUTH, QTDIR, QTEXCL, QTFILE, QTTMP,
                    ProtocolError, Qid, Stat, pack, read_msg, unpack)
from .server import Error, Node, Open, Server
from .client import Client, File, Hungup
from .dial import announce, dial, namespace_dir, post, service_path

__all__ = [
    "DMAPPEND", "DMAUTH", "DMDIR", "DMEXCL", "DMTMP", "IOHDRSZ", "MAXWELEM",
    "NOFID", "NOTAG", "OEXEC", "ORCLOSE", "ORDWR", "OREAD", "OTRUNC",
    "OWRITE", "QTAPPEND", "QTAUTH", "QTDIR", "QTEXCL", "QTFILE", "QTTMP",
    "ProtocolError", "Qid", "Stat", "pack", "read_msg", "unpack",
    "Error", "Node", "Open", "Server", "Client", "File", "Hungup",
    "announce", "dial", "namespace_dir", "post", "service_path",
]
