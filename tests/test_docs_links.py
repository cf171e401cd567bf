"""README.md, docs/ARCHITECTURE.md and docs/guide-ja.md: every ``[text](#anchor)`` link names a heading (GitHub's
slug) or an ``<a id="…">`` of the same file, so the two readers' navigation lines and the cross-references keep
working when a section is renamed; the Japanese guide's ``../README.md#anchor`` links name a README anchor, and every
``patrol COMMAND --option`` in its code blocks is a command and options the CLI has."""

from __future__ import annotations

import re
import shlex
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


@pytest.mark.parametrize("doc", ["README.md", "docs/ARCHITECTURE.md", "docs/guide-ja.md"])
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


def test_the_wheel_named_in_the_docs_is_this_version():
    """README's offline install names the wheel ``make wheelhouse`` builds (``road_patrol-<version>-py3-none-any.whl``,
    typed on a PC without internet): it said 0.2.0 two releases after."""
    from detector import __version__

    for doc in ("README.md", "docs/guide-ja.md"):
        named = set(re.findall(r"road_patrol-([^-\s]+)-py3", (ROOT / doc).read_text(encoding="utf-8")))
        assert named <= {__version__}, f"{doc} names the wheel of {sorted(named)}, the package is {__version__}"


GUIDE = ROOT / "docs" / "guide-ja.md"


def test_guide_links_to_readme_resolve():
    """docs/guide-ja.md sends the reader to README.md's sections for details (``../README.md#anchor``): each names a
    heading or ``<a id>`` there, so a README section renamed breaks this test, not the Japanese reader's link."""
    anchors, _ = _anchors_and_links((ROOT / "README.md").read_text(encoding="utf-8"))
    prose = re.sub(r"```.*?```", "", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    links = re.findall(r"\]\(\.\./README\.md#([^)]+)\)", prose)
    assert len(links) >= 10, "docs/guide-ja.md links to (almost) no README section"
    missing = sorted({a for a in links if a not in anchors})
    assert not missing, f"docs/guide-ja.md: links to README anchors that do not exist: {missing}"


def _guide_commands() -> list[list[str]]:
    """The ``patrol …`` command lines of the guide's code blocks, split as a shell splits them."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    return [shlex.split(line.strip()) for b in blocks for line in b.splitlines()
            if line.strip().startswith("patrol ")]


def test_guide_commands_and_options_exist():
    """Every ``patrol COMMAND --option`` the Japanese guide shows in a code block is a command of the CLI with that
    option (road-department staff copy these lines: an option renamed in cli.py must be renamed in the guide)."""
    import typer

    import cli

    group = typer.main.get_command(cli.app)
    lines = _guide_commands()
    assert len(lines) >= 15, f"docs/guide-ja.md shows only {len(lines)} patrol commands"
    wrong = []
    for argv in lines:
        name = argv[1]
        cmd = group.commands.get(name)
        if cmd is None:
            wrong.append(f"{' '.join(argv)}: no command {name!r}")
            continue
        opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "--debug"}
        wrong += [f"{' '.join(argv)}: {name} has no option {a.split('=')[0]}" for a in argv[2:]
                  if a.startswith("--") and a.split("=")[0] not in opts]
    assert not wrong, "docs/guide-ja.md: " + "; ".join(wrong)
