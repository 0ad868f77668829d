"""The repository stands alone (issue 15): every citation of the Plan 9
behaviour a tracked file relies on leads to a sentence in the repository,
and nothing reads a path outside it.

Citations look like `docs/spec/servers.md §2.9`, `docs/spec/fs-auth.md
§3.5/§3.6; facts 25-28`, `docs/decisions.md, "Reference dialect"`, and in
test names `servers_fact19` / `fs_auth_fact19`.  A section must be a
numbered heading of the page, a fact a numbered item of its "Testable
facts", a quoted decisions entry a heading of docs/decisions.md.  Page
names without `docs/spec/` (or `docs/` for decisions.md) and a `fact N`
not led by its page are refused: the reader could not tell where to look.
"""
from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[1]
SELF = "tests/test_spec_citations.py"

NUM = r"\d+(?:\.\d+)*"
END = r"(?!\w|\.\d)"
GAP = r"(?:[ \t]+|[ \t]*\n[ \t]*)"  # blanks, or one line break (a wrapped docstring)
NUMLIST = r"\d+(?:\s?[-–]\s?\d+)?(?:(?:\s*,\s*|\s+and\s+)\d+(?:\s?[-–]\s?\d+)?)*"
PAGE = re.compile(r"docs/spec/(?P<page>[\w.-]+?)\.md`?")
ITEM = re.compile(rf"(?P<sec>§{NUM}(?:[-–]§?{NUM})?{END})|(?P<facts>[Ff]acts?{GAP}{NUMLIST}{END})")
SEP = re.compile(r"\s*[,/;]\s*|\s+and\s+|\s+or\s+|\s+")
SPACE = re.compile(r"\s+")
PROSE_FACT = re.compile(rf"(?<![\w/])[Ff]acts?{GAP}\d+(?:\s?[-–]\s?\d+)?{END}")
IDENT_FACT = re.compile(r"(?<![A-Za-z])(?:(?P<page>servers|fs_auth)_)?fact(?P<n>\d+)")
IDENT = re.compile(r"\b\w*(?<![A-Za-z])fact\d+\w*")
STALE_PAGE = re.compile(r"(?<![\w/.-])(servers|fs-auth)\.md")
STALE_DECISIONS = re.compile(r"(?<![\w/.-])decisions\.md")
DECISION = re.compile(r'docs/decisions\.md`?,?\s+"(?P<heading>[^"]+)"')
LOCAL_SEC = re.compile(rf"§(?P<n>{NUM}){END}")
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", r"(?<![\w.])/" + r"work/",
                               "shared/" + "(?:spec|golden)"]))
CLIMB = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?(?P<chain>(?:\.parent\b|\.parents\[\d+\])+)")
ROOT_UP = re.compile(r"\b(?:REPO|ROOT|repo|root)\s*(?:\.parent\b|/\s*[\"']\.\.)")


@cache
def tracked() -> tuple[str, ...]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    return tuple(p for p in out.stdout.decode().split("\0") if p)


def text_of(path: str) -> str | None:
    try:
        return (REPO / path).read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None


@cache
def page(name: str) -> tuple[frozenset[str], frozenset[int]] | None:
    """(section numbers, fact numbers) of docs/spec/<name>.md, None if absent."""
    f = REPO / "docs" / "spec" / f"{name}.md"
    if not f.exists():
        return None
    sections, facts, in_facts = set(), set(), False
    for line in f.read_text(encoding="utf-8").splitlines():
        if h := re.match(r"#+\s+(.*)", line):
            in_facts = "Testable facts" in h.group(1)
            if n := re.match(rf"({NUM})\.?\s", h.group(1)):
                sections.add(n.group(1))
        elif in_facts and (n := re.match(r"(\d+)\.\s", line)):
            facts.add(int(n.group(1)))
    return frozenset(sections), frozenset(facts)


@cache
def decision_headings() -> frozenset[str]:
    """Its headings, and the bold names that lead its list entries (`-
    **MIME nesting** (...)`): an entry of a section is cited by its name."""
    text = (REPO / "docs" / "decisions.md").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^##+\s+(.+?)\s*$", text, re.M)
                     + re.findall(r"^- \*\*(.+?)\.?\*\*", text, re.M))


def is_heading(name: str) -> bool:
    """A decisions heading or entry, cited whole or without its
    "(qualifier)"; a citation wrapped over lines reads as one line."""
    name = " ".join(name.split())
    return any(h == name or h.startswith(name + " (") for h in decision_headings())


def numbers(spec: str) -> list[int]:
    out = []
    for part in re.split(r"\s*,\s*|\s+and\s+", spec.strip()):
        lo, _, hi = re.sub(r"\s", "", part).replace("–", "-").partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def runs(text: str):
    """(start, end, page name, [(kind, text)]) for each citation run."""
    for m in PAGE.finditer(text):
        pos, items = m.end(), []
        while (s := (SEP if items else SPACE).match(text, pos)) and (it := ITEM.match(text, s.end())):
            items.append(("sec" if it.group("sec") else "facts", it.group(0)))
            pos = it.end()
        yield m.start(), pos, m.group("page"), items


def check_item(name: str, kind: str, item: str) -> list[str]:
    spec = page(name)
    if spec is None:
        return [f"docs/spec/{name}.md does not exist"]
    sections, facts = spec
    if kind == "sec":
        wanted = re.findall(NUM, item)
        return [f"docs/spec/{name}.md has no §{n}" for n in wanted if n not in sections]
    return [f"docs/spec/{name}.md has no fact {n}"
            for n in numbers(re.sub(r"^[Ff]acts?\s+", "", item)) if n not in facts]


def check_runs(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    errors, spans = [], []
    for start, end, name, items in runs(text):
        spans.append((start, end))
        for kind, item in items:
            errors += check_item(name, kind, item)
        if not items and page(name) is None:
            errors.append(f"docs/spec/{name}.md does not exist")
    return errors, spans


def check_identifiers(text: str) -> list[str]:
    errors = []
    for ident in IDENT.findall(text):
        current = None
        for m in IDENT_FACT.finditer(ident):
            current = (m.group("page") or current or "").replace("_", "-") or None
            if current is None:
                errors.append(f"{ident}: name the page (servers_fact{m.group('n')} or fs_auth_fact{m.group('n')})")
            else:
                errors += check_item(current, "facts", f"fact {m.group('n')}")
    return errors


def check_local_sections(path: str, text: str, spans) -> list[str]:
    """In a spec page, a § without a page is a section of that page
    (one after a number, as in `RFC 3501 §7.4.1`, is another document's)."""
    name = PurePosixPath(path).stem
    return [f"docs/spec/{name}.md has no §{m.group('n')}"
            for m in LOCAL_SEC.finditer(text)
            if not any(a <= m.start() < b for a, b in spans)
            and not re.search(r"\d\s*$", text[max(0, m.start() - 12):m.start()])
            and m.group("n") not in page(name)[0]]


def check_citations(path: str, text: str) -> list[str]:
    """Every problem with the spec citations in one file's text."""
    errors, spans = check_runs(text)
    errors += [f"bare `{m.group(0)}`: say docs/spec/servers.md or docs/spec/fs-auth.md"
               for m in PROSE_FACT.finditer(text) if not any(a <= m.start() < b for a, b in spans)]
    errors += check_identifiers(text)
    errors += [f"`{m.group(0)}`: cite docs/spec/{m.group(0)}" for m in STALE_PAGE.finditer(text)]
    errors += ["`decisions.md`: cite docs/decisions.md" for _ in STALE_DECISIONS.finditer(text)]
    errors += [f'docs/decisions.md has no heading "{m.group("heading")}"'
               for m in DECISION.finditer(text) if not is_heading(m.group("heading"))]
    if path.startswith("docs/spec/") and path.endswith(".md"):
        errors += check_local_sections(path, text, spans)
    return errors


def check_stands_alone(path: str, text: str) -> list[str]:
    """Paths that lead out of the repository."""
    errors = [f"mentions `{m.group(0)}`" for m in OUTSIDE.finditer(text)]
    if path.endswith(".py"):
        depth = len(PurePosixPath(path).parts)
        for m in CLIMB.finditer(text):
            chain = m.group("chain")
            up = chain.count(".parent") - chain.count(".parents[")
            up += sum(int(k) + 1 for k in re.findall(r"\.parents\[(\d+)\]", chain))
            if up > depth:
                errors.append(f"`{m.group(0)}` climbs above the repository")
        errors += [f"`{m.group(0)}` leaves the repository" for m in ROOT_UP.finditer(text)]
    return errors


def scanned(skip_testdata: bool):
    for path in tracked():
        if path == SELF or (skip_testdata and path.startswith("testdata/")):
            continue
        if (text := text_of(path)) is not None:
            yield path, text


def test_spec_pages_number_their_sections_and_facts():
    servers, fs_auth = page("servers"), page("fs-auth")
    assert servers[1] == frozenset(range(1, 66))
    assert fs_auth[1] == frozenset(range(1, 37))
    assert {"1.1", "2.9", "3.6", "3.16", "4"} <= servers[0]
    assert {"0", "1.6.1", "1.10", "2.5", "3.6", "4", "5.5"} <= fs_auth[0]
    assert {"Reference dialect", "IMAP atoms in upper case (imap4d)"} <= decision_headings()


def test_every_citation_resolves():
    problems = [f"{path}: {e}" for path, text in scanned(skip_testdata=True)
                for e in check_citations(path, text)]
    assert problems == []


def test_nothing_reads_outside_the_repository():
    problems = [f"{path}: {e}" for path, text in scanned(skip_testdata=False)
                for e in check_stands_alone(path, text)]
    assert problems == []


GOOD = [
    "docs/spec/servers.md §2.9",
    "(docs/spec/fs-auth.md §3.5/§3.6; facts 25-28)",
    "`docs/spec/servers.md` §3.10 and fact 32",
    "docs/spec/fs-auth.md §1.1-1.3, §1.7-1.8",
    "docs/spec/servers.md facts 15, 16, 19 and 65",
    'see docs/decisions.md, "Reference dialect"',
    "def test_servers_fact3_fact4_fact5(): pass",
    "def test_authinfo_fs_auth_fact19(): pass",
    "RFC 3501 §7.4.1; issue 2 §4",
]
BAD = [
    ("docs/spec/servers.md §2.99", "no §2.99"),
    ("docs/spec/servers.md fact 66", "no fact 66"),
    ("docs/spec/fs-auth.md facts 35-37", "no fact 37"),
    ("docs/spec/nosuch.md §1", "does not exist"),
    ("servers.md §2.9", "cite docs/spec/servers.md"),
    ("see decisions.md", "cite docs/decisions.md"),
    ("# fact 19", "bare `fact 19`"),
    ("docs/spec/servers.md §2.9 and also fact 19", "bare `fact 19`"),
    ("def test_fact19_empty_line(): pass", "name the page"),
    ("def test_servers_fact70(): pass", "no fact 70"),
    ('docs/decisions.md, "No such entry"', 'no heading "No such entry"'),
]


@pytest.mark.parametrize("text", GOOD)
def test_checker_accepts_good_citations(text):
    assert check_citations("x.py", text) == []


@pytest.mark.parametrize("text, problem", BAD)
def test_checker_refuses_bad_citations(text, problem):
    assert any(problem in e for e in check_citations("x.py", text)), check_citations("x.py", text)


def test_checker_resolves_a_spec_page_s_own_sections():
    assert check_citations("docs/spec/servers.md", "as in §2.9 (RFC 3501\n  §7.4.1)") == []
    assert check_citations("docs/spec/servers.md", "as in §2.12") == ["docs/spec/servers.md has no §2.12"]


@pytest.mark.parametrize("path, text", [
    ("tests/x.py", 'SPEC = "../' + 'shared/spec/servers.md"'),
    ("docs/x.md", "read /" + "work/shared/golden"),
    ("tests/x.py", "REPO = Path(__file__).resolve().parents[2]"),
    ("tests/fixtures/x.py", "Path(__file__).parent.parent.parent.parent"),
    ("bench/x.py", 'DATA = REPO / ".." / "data"'),
])
def test_checker_refuses_paths_outside(path, text):
    assert check_stands_alone(path, text)


@pytest.mark.parametrize("path, text", [
    ("tests/x.py", "REPO = Path(__file__).resolve().parents[1]"),
    ("tests/fixtures/x.py", "REPO = Path(__file__).resolve().parents[2]"),
    ("testdata/golden/upasfs/ctl-demo.txt", "$ 9p ls upasfs/work"),
])
def test_checker_accepts_paths_inside(path, text):
    assert check_stands_alone(path, text) == []
