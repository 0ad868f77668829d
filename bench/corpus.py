"""A deterministic benchmark mailbox: by default 10,000 messages, ~100 MB.

The mix: plain text notes and long threads (some 8-bit latin1, some with
`>From ` and escaped ` From ` lines), multipart/alternative text+html,
multipart/mixed with base64 attachments, forwarded message/rfc822 parts,
encoded-word headers.  The same seed always gives the same bytes.

    python -m bench.corpus [-n MESSAGES] [--seed N] OUTPUT
"""
from __future__ import annotations

import argparse
import base64
import random
import time
from pathlib import Path

WORDS = ("plan nine mail file server glenda bell labs upas message the of and to "
         "a in is it that for on with as was by this be are from or at an "
         "kernel namespace protocol rune acme sam rio venti fossil").split()
NAMES = ["Rob Pike", "Ken Thompson", "Dennis Ritchie", "Dave Presotto",
         "Howard Trickey", "Phil Winterbottom", "Russ Cox", "Glenda"]

OUT = Path(__file__).resolve().parent / "out"


def _addr(rng: random.Random) -> tuple[str, str]:
    name = rng.choice(NAMES)
    return name, name.lower().replace(" ", ".") + "@example.org"


def _text(rng: random.Random, nbytes: int, latin1: bool = False) -> bytes:
    lines, n = [], 0
    while n < nbytes:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        r = rng.random()
        if r < 0.02:
            line = ">From " + line
        elif r < 0.03:
            line = " From " + line                      # escaped by delivery
        elif latin1 and r < 0.1:
            line += " caf\xe9 na\xefve"
        b = line.encode("latin-1")
        lines.append(b)
        n += len(b) + 1
    return b"\n".join(lines) + b"\n"


def _headers(rng: random.Random, i: int, when: float, ctype: str, extra: str = "") -> bytes:
    name, addr = _addr(rng)
    subj = f"message {i}: " + " ".join(rng.choice(WORDS) for _ in range(5))
    if rng.random() < 0.1:
        subj = "=?utf-8?B?" + base64.b64encode(f"Caf\u00e9 {i}".encode()).decode() + "?="
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
    return (f"Received: from relay{i % 7}.example.org by mail.example.org; {date}\n"
            f"Date: {date}\nFrom: {name} <{addr}>\nTo: glenda@example.org\n"
            f"Subject: {subj}\nMessage-ID: <{i}.{int(when)}@example.org>\n"
            f"MIME-Version: 1.0\nContent-Type: {ctype}\n{extra}\n").encode()


def _body(rng: random.Random, i: int, when: float) -> bytes:
    kind = rng.random()
    if kind < 0.55:
        latin1 = rng.random() < 0.2
        cs = "iso-8859-1" if latin1 else "us-ascii"
        return (_headers(rng, i, when, f"text/plain; charset={cs}")
                + _text(rng, rng.randint(1000, 9000), latin1))
    if kind < 0.80:
        t = _text(rng, rng.randint(1000, 5000))
        html = b"<html><body><p>" + t.replace(b"\n", b"</p><p>") + b"</p></body></html>\n"
        return (_headers(rng, i, when, 'multipart/alternative; boundary="alt"')
                + b"--alt\nContent-Type: text/plain; charset=us-ascii\n\n" + t
                + b"--alt\nContent-Type: text/html; charset=us-ascii\n\n" + html + b"--alt--\n")
    if kind < 0.95:
        blob = rng.randbytes(rng.randint(8000, 40000))
        b64 = base64.encodebytes(blob)
        return (_headers(rng, i, when, 'multipart/mixed; boundary="mix"')
                + b"--mix\nContent-Type: text/plain\n\n" + _text(rng, 800)
                + b'--mix\nContent-Type: application/octet-stream; name="data.bin"\n'
                b'Content-Disposition: attachment; filename="data.bin"\n'
                b"Content-Transfer-Encoding: base64\n\n" + b64 + b"--mix--\n")
    inner = _headers(rng, i + 100000, when - 86400, "text/plain") + _text(rng, 2000)
    return (_headers(rng, i, when, 'multipart/mixed; boundary="fwd"')
            + b"--fwd\nContent-Type: text/plain\n\nforwarded:\n"
            + b"--fwd\nContent-Type: message/rfc822\n\n" + inner + b"--fwd--\n")


def make_corpus(path: Path, n: int = 10_000, seed: int = 1) -> int:
    """Write the mailbox; return its size in bytes."""
    rng = random.Random(seed)
    when = 1700000000.0
    size = 0
    with open(path, "wb") as f:
        for i in range(1, n + 1):
            when += rng.randint(30, 4000)
            envdate = time.strftime("%a %b %d %H:%M:%S GMT %Y", time.gmtime(when))
            _, addr = _addr(rng)
            data = f"From {addr} {envdate}\n".encode() + _body(rng, i, when) + b"\n"
            f.write(data)
            size += len(data)
    return size


def corpus(n: int, seed: int = 1) -> Path:
    """The deterministic mailbox of n messages, generated once into
    bench/out/corpus/ and reused by every benchmark."""
    path = OUT / "corpus" / f"mbox-{n}-{seed}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        t = time.perf_counter()
        make_corpus(tmp, n, seed)
        tmp.rename(path)
        print(f"corpus {n}: generated in {time.perf_counter() - t:.1f}s")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("output")
    a = ap.parse_args()
    size = make_corpus(Path(a.output), a.n, a.seed)
    print(f"{a.output}: {a.n} messages, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
