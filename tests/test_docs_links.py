"""Every relative link in the README and docs/ leads to a file that exists, and every
#anchor to a heading of that file, so moving a section cannot leave a dead link.

Anchors follow GitHub's rule: the heading's text in lower case, without punctuation
other than hyphens and underscores, spaces turned into hyphens, and "-1", "-2" added
to repeated headings. Code blocks and code spans are skipped, as GitHub renders no
link or heading inside them. The checker is tested on small inline documents first,
so a checker that finds nothing cannot pass unnoticed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted([ROOT / "README.md", ROOT / "k8s" / "README.md",
                    *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...


@dataclass(frozen=True)
class Link:
    source: Path
    target: str

    def __str__(self) -> str:
        return f"{shown(self.source)}: ({self.target})"


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def without_code(text: str) -> str:
    """The text with fenced blocks and code spans blanked out."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before the -N of repeated headings)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a document's headings define."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for match in _HEADING.finditer(_FENCE.sub("", text)):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path, text: str) -> list[Link]:
    return [Link(path, target) for target in _LINK.findall(without_code(text))
            if not _EXTERNAL.match(target)]


def broken(link: Link) -> str | None:
    """Why a relative link does not resolve, or None when it does."""
    file_part, _, anchor = link.target.partition("#")
    target = (link.source.parent / file_part).resolve() if file_part else link.source
    if not target.exists():
        return f"{link}: no file {file_part}"
    if not anchor:
        return None
    if target.suffix != ".md":
        return f"{link}: an anchor into a file that is not Markdown"
    if anchor not in anchors(target.read_text(encoding="utf-8")):
        return f"{link}: no heading #{anchor} in {shown(target)}"
    return None


def test_slug_follows_githubs_rule() -> None:
    assert slug("The two commands") == "the-two-commands"
    assert slug("`make run`") == "make-run"
    assert slug("Metrics (Prometheus)") == "metrics-prometheus"
    assert slug("Why the drain ratio stays at 40-60% on this machine") == (
        "why-the-drain-ratio-stays-at-40-60-on-this-machine")
    assert slug("Without Grafana: `python -m grafana.render`") == (
        "without-grafana-python--m-grafanarender")


def test_repeated_headings_get_numbered_anchors_and_code_defines_none() -> None:
    text = "# Title\n## Setup\n## Setup\n```sh\n# not a heading\n```\n"
    assert anchors(text) == {"title", "setup", "setup-1"}


def test_the_checker_finds_links_and_skips_code_and_external_ones() -> None:
    source = ROOT / "docs" / "example.md"
    text = ("See [a](a.md), ![img](img/x.png \"title\") and [web](https://example.com).\n"
            "`[not](a link)` and\n```\n[also not](b.md)\n```\n[anchor](#here)\n")
    assert [link.target for link in relative_links(source, text)] == [
        "a.md", "img/x.png", "#here"]


def test_the_checker_reports_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n## Known one\n")
    (tmp_path / "data.txt").write_text("x")
    readme = tmp_path / "README.md"
    readme.write_text("# Top\n")
    assert broken(Link(readme, "docs/page.md")) is None
    assert broken(Link(readme, "docs/page.md#known-one")) is None
    assert broken(Link(readme, "#top")) is None
    assert broken(Link(readme, "data.txt")) is None
    assert broken(Link(readme, "docs/missing.md")) == (
        f"{readme}: (docs/missing.md): no file docs/missing.md")
    assert broken(Link(readme, "docs/page.md#unknown")) == (
        f"{readme}: (docs/page.md#unknown): no heading #unknown in {tmp_path}/docs/page.md")
    assert broken(Link(readme, "#nowhere")) is not None
    assert broken(Link(readme, "data.txt#x")) is not None
    assert broken(Link(tmp_path / "docs" / "page.md", "../README.md#top")) is None


def test_the_documents_exist_and_link_somewhere() -> None:
    assert ROOT / "README.md" in DOCUMENTS and len(DOCUMENTS) > 2
    links = [link for path in DOCUMENTS
             for link in relative_links(path, path.read_text(encoding="utf-8"))]
    assert any(link.target.startswith("docs/") for link in links)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    links = relative_links(path, path.read_text(encoding="utf-8"))
    problems = [problem for link in links if (problem := broken(link)) is not None]
    assert problems == []
