"""The README and the guide in docs/, checked without the docs tool: the README stays a front door,
every relative link lands on a file, the site's navigation and the pages agree, the API page names
modules that exist, and the files refer only to what is in the repository. `make docs` builds the
site strictly on top of this (anchors, rendering, the API docstrings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")  # the target of a Markdown link or image


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def nav_files(nav: list) -> list[str]:
    out: list[str] = []
    for entry in nav:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            out += nav_files(value) if isinstance(value, list) else [value]
    return out


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 300, f"README.md has {len(lines)} lines; the guide belongs in docs/"


@pytest.mark.parametrize("doc", ["README.md", *(f"docs/{p.name}" for p in pages())])
def test_relative_links_land_on_files(doc):
    path = ROOT / doc
    missing = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or an anchor on the same page (the strict site build checks anchors)
        if not (path.parent / target.split("#")[0]).exists():
            missing.append(target)
    assert not missing, f"{doc}: links to files that do not exist: {missing}"


def test_every_page_is_in_the_navigation_and_every_entry_is_a_page():
    conf = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = nav_files(conf["nav"])
    assert sorted(nav) == sorted(p.name for p in pages())
    assert conf["strict"] is True


def test_the_api_page_names_modules_that_exist():
    modules = re.findall(r"^::: ([\w.]+)", (DOCS / "api.md").read_text(), re.M)
    assert "transfersep" in modules and len(modules) > 10
    for name in modules:
        base = ROOT / "src" / Path(*name.split("."))
        assert base.with_suffix(".py").is_file() or (base / "__init__.py").is_file(), (
            f"docs/api.md: {name} is no module (a module with an __init__.py, or a .py file, under src/)"
        )


# folders of one machine, documents outside the repository, ticket numbers, a narrator's "this (work)
# session": none belongs in files that ship or that a reader of the repository sees
OUTSIDE = re.compile(
    r"\bthis (?:session)\b|\bthe (?:session) that\b|\bengineers?\b|\bissue #?\d+|/work/|\.\./shared", re.I
)


def test_files_refer_only_to_the_repository():
    files = [ROOT / "README.md", ROOT / "Makefile", *pages()]
    for folder in ("src", "conf", "tests", "scripts", "sweeps"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".yaml", ".sh", ".md"}]
    this = Path(__file__).resolve()
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in files
        if p.resolve() != this and p.is_file()
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "\n".join(hits)
