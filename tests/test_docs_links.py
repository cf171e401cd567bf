"""README.md and docs/ARCHITECTURE.md: every ``[text](#anchor)`` link names a heading (GitHub's slug) or an
``<a id="…">`` of the same file, so the two readers' navigation lines and the cross-references keep working when a
section is renamed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (``.`` ``:`` backticks …), spaces as ``-``."""
    h = heading.strip().lower()
    return "".join(c for c in h if c.isalnum() or c in "-_ ").replace(" ", "-")


def _anchors_and_links(text: str) -> tuple[set[str], list[str]]:
    prose = re.sub(r"```.*?```", "", text, flags=re.S)  # a '#' in a code block is no heading
    anchors = {_slug(m[1]) for m in re.finditer(r"^#+\s+(.*)$", prose, re.M)}
    anchors |= set(re.findall(r'<a id="([^"]+)"', text))
    return anchors, re.findall(r"\]\(#([^)]+)\)", prose)


@pytest.mark.parametrize("doc", ["README.md", "docs/ARCHITECTURE.md"])
def test_every_anchor_link_resolves(doc):
    anchors, links = _anchors_and_links((ROOT / doc).read_text(encoding="utf-8"))
    missing = sorted({a for a in links if a not in anchors})
    assert not missing, f"{doc}: links to anchors that do not exist: {missing}"


def test_slugs_as_github_makes_them():
    anchors, _ = _anchors_and_links("## frames.csv columns\n## Cameras without GPS: track files\n"
                                    "```\n# not a heading\n```\n<a id=\"rear-camera\"></a>")
    assert anchors == {"framescsv-columns", "cameras-without-gps-track-files", "rear-camera"}


def test_changelog_links_resolve():
    """CHANGELOG.md's links into README.md (``README.md#anchor``) name a heading there, and the version at its top
    is the package's, under an ``## Unreleased`` section if there is one (a release without its changelog entry, or
    the reverse, fails)."""
    from detector import __version__

    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    anchors, _ = _anchors_and_links((ROOT / "README.md").read_text(encoding="utf-8"))
    links = re.findall(r"\]\(README\.md#([^)]+)\)", text)
    assert links, "CHANGELOG.md links to no README section"
    missing = sorted({a for a in links if a not in anchors})
    assert not missing, f"CHANGELOG.md: links to README anchors that do not exist: {missing}"
    # the first released version (an "## Unreleased" section above it gathers what the next release brings)
    assert [h for h in re.findall(r"^## (\S+)", text, re.M) if h != "Unreleased"][0] == __version__
