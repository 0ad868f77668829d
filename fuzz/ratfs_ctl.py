"""ratfs control file (upas/ratify/rules.parse_ctl): any text parses, bad
entries are skipped, IP entries come out sorted."""
from upas.ratify import rules


def target(data: bytes) -> None:
    cl = rules.parse_ctl(data.decode("utf-8", "replace"))
    for entries in cl.ip.values():
        keys = [(e.net.version, int(e.net.network_address)) for e in entries]
        assert keys == sorted(keys)
