"""The README stays a front page and the docs stay linked: no TensorFlow, a second or so.

- README.md is at most 260 lines and its first code block is `make demo` and `make test`;
- every relative link in README.md and docs/*.md points to a file or folder that exists
  (anchors and external links aside);
- every registered domain has its guide, docs/<domain>.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
MARKDOWN = [README, *sorted(DOCS.glob("*.md"))]

# [text](target) or ![alt](target), target without spaces; an optional "title" after it.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text: str) -> str:
    """The text outside fenced code blocks (links in code are not links)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(line)
    return "\n".join(kept)


def relative_links(path: Path) -> list[str]:
    targets = []
    for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # http:, https:, mailto: ...; an anchor on the same page
        targets.append(target)
    return targets


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 260, f"README.md has {len(lines)} lines; move detail to docs/"


def test_readme_first_code_block_is_make_demo_and_make_test():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
    assert block, "README.md has no code block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]


def test_docs_folder_exists():
    assert DOCS.is_dir() and list(DOCS.glob("*.md"))


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    missing = []
    for target in relative_links(page):
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        if not file_part:
            continue
        if not (page.parent / file_part).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(REPO)} links to missing files: {missing}"


def test_readme_links_every_doc():
    linked = {
        (README.parent / t.split("#", 1)[0]).resolve()
        for t in relative_links(README)
        if t.split("#", 1)[0]
    }
    unlinked = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not unlinked, f"README.md does not link to docs/{unlinked}"


def test_every_domain_has_a_guide():
    # In a fresh process, to check that discovering the domains imports no TensorFlow.
    code = (
        "import sys; from pipelines.domains import discover; names = discover(); "
        "assert 'tensorflow' not in sys.modules, 'discover() imported TensorFlow'; "
        "print(' '.join(names))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    names = done.stdout.split()
    assert names, "no domain is registered"
    missing = [name for name in names if not (DOCS / f"{name}.md").is_file()]
    assert not missing, f"domains without a guide: {[f'docs/{n}.md' for n in missing]}"
