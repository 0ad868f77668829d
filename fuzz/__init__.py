"""Fuzz targets, one module per parser (issue 9).

Each module has `target(data: bytes) -> None`: it feeds the bytes to the
parser and raises only on a bug (an exception other than the parser's own
protocol error, or a broken invariant).  `python -m fuzz.run TARGET [-t SECONDS]`
runs one with atheris (coverage-guided) if installed, else hypothesis;
tests/test_fuzz_targets.py runs each briefly with hypothesis in CI.
"""
TARGETS = ("imap_parser", "pop3_protocol", "ninep_codec", "mbox_parser",
           "mime_parser", "factotum_rpc", "ratfs_ctl",
           "mime_nesting", "imap_nesting")     # generated depth and counts (nesting.py)
