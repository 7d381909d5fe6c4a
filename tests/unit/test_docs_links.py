"""Every relative link in the docs lands: the file (or folder) exists, and a ``#anchor`` names a
heading of the target markdown file as GitHub slugs it.

The docs are split over pages (``docs/architecture.md`` is a map of ``docs/design/``), so a
moved section or a renamed module breaks links silently; this test names each broken one with
its file and line. Covered: ``README.md``, ``docs/**/*.md`` and ``deploy/**/*.md``. Links in
fenced code blocks and inline code are not links and are skipped, as are absolute URLs.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

from tests.conftest import REPO

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+).*?\1")
# [text](target) and ![alt](target); the text may hold one level of brackets
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def doc_files() -> list[Path]:
    files = [REPO / "README.md"]
    for folder in ("docs", "deploy"):
        files += sorted((REPO / folder).rglob("*.md"))
    return [f for f in files if f.is_file()]


def prose_lines(path: Path, keep_code: bool = False) -> list[tuple[int, str]]:
    """The file's lines outside fenced code blocks, numbered from 1; inline code blanked unless
    ``keep_code`` (a heading's code words are part of its slug)."""
    out, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append((number, line if keep_code else INLINE_CODE.sub("", line)))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (links and code marks removed), lowercased,
    punctuation other than '-' and '_' dropped, each space a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every anchor a markdown file has: its headings' slugs, a repeat getting -1, -2, ..."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path, keep_code=True):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def broken_links(path: Path) -> list[str]:
    """Each link of ``path`` that lands nowhere, as ``file:line: target (why)``. Anchors are
    checked in markdown targets only: GitHub gives other files line anchors, not headings."""
    wrong = []
    for number, line in prose_lines(path):
        for target in LINK.findall(line):
            if EXTERNAL.match(target):
                continue
            where = f"{shown(path)}:{number}: {target}"
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / unquote(file_part)).resolve() if file_part else path
            if not dest.exists():
                wrong.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
                wrong.append(f"{where} (no heading #{anchor} in {shown(dest)})")
    return wrong


def test_every_relative_link_in_the_docs_lands():
    files = doc_files()
    assert REPO / "docs" / "architecture.md" in files and len(files) > 5
    wrong = [w for f in files for w in broken_links(f)]
    assert not wrong, "broken links:\n" + "\n".join(wrong)


def test_slugs_follow_githubs_rules():
    assert slug("2. The way a frame travels") == "2-the-way-a-frame-travels"
    assert slug("Why camfleet keeps its own pools, not Ray Serve") \
        == "why-camfleet-keeps-its-own-pools-not-ray-serve"
    assert slug("`FleetController.start` and [apply](x.md)") == "fleetcontrollerstart-and-apply"
    assert slug("snake_case -- kept") == "snake_case----kept"


def test_the_check_finds_a_broken_file_and_a_broken_anchor(tmp_path, monkeypatch):
    monkeypatch.setattr("tests.unit.test_docs_links.REPO", tmp_path)
    (tmp_path / "other.md").write_text("# Other page\n\n## `Some` heading\n", encoding="utf-8")
    planted = tmp_path / "planted.md"
    planted.write_text("# Top\n\n[ok](#top) [gone](#nowhere) [there](other.md#some-heading)\n"
                       "[not there](other.md#top) [missing](nothing-here.md)\n"
                       "`[code](not-a-link.md)` [web](https://example.com/x#y) ![pic](gone.png)\n"
                       "```\n[fenced](not-a-link-either.md)\n```\n", encoding="utf-8")
    assert broken_links(planted) == [
        "planted.md:3: #nowhere (no heading #nowhere in planted.md)",
        "planted.md:4: other.md#top (no heading #top in other.md)",
        "planted.md:4: nothing-here.md (no such file)",
        "planted.md:5: gone.png (no such file)",
    ]
