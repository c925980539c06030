"""scripts/git_sources.py, the default model's corpus readers for git repositories: Markdown
posts and OpenStax CNXML turned into prose, and a pinned commit exported from a local mirror.
Loaded by path (the scripts are not a package)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def gs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("git_sources", SCRIPTS / "git_sources.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


POST = """---
layout: post
title: >
  How we moved
  to HTTPS
authors:
- aaron
---

We moved every site to [HTTPS](https://https.cio.gov) in
one **long** week &mdash; here is how.
{{< img src="lock.png" alt="A lock" >}}

## What we learned

<div class="callout">
    > Start with the sites people use most.
</div>

- Make a list of every
  domain you own.
- Turn on HSTS.

[youtube=http://www.youtube.com/watch?v=abc]

```
    curl -I https://example.gov
```
"""


def test_a_post_becomes_its_title_and_unwrapped_prose(gs: ModuleType) -> None:
    text = gs.blog_post(POST)
    blocks = text.split("\n\n")
    assert blocks[0] == "How we moved to HTTPS"  # a folded YAML title, read as YAML
    assert blocks[1] == "We moved every site to HTTPS in one long week \u2014 here is how."
    assert "What we learned" in blocks
    assert "Start with the sites people use most." in blocks  # layout HTML and quote marks gone
    assert "- Make a list of every domain you own.\n- Turn on HSTS." in blocks
    assert "    curl -I https://example.gov" in text  # a fenced block keeps its indentation
    for leftover in ("{{", "<div", "](", "youtube=", "**", "layout:", "##"):
        assert leftover not in text


CNXML = """<document xmlns="http://cnx.rice.edu/cnxml">
  <title>Supply and Demand</title>
  <metadata xmlns:md="http://cnx.rice.edu/mdml"><md:title>Supply and Demand</md:title></metadata>
  <content>
    <para id="p1">Prices <emphasis>signal</emphasis> scarcity.</para>
    <table><tgroup cols="1"><tbody><row><entry>Table cell</entry></row></tbody></tgroup></table>
    <figure><media alt="A chart"/><caption>Figure caption</caption></figure>
    <section><title>Equilibrium</title>
      <para id="p2">The price where <m:math xmlns:m="http://www.w3.org/1998/Math/MathML">
        <m:mi>Q</m:mi></m:math> balances.</para>
      <list><item>Buyers want less</item><item>Sellers offer more</item></list>
    </section>
    <exercise><problem><para>Exercise text</para></problem></exercise>
  </content>
</document>"""


def test_a_textbook_module_keeps_titles_paragraphs_and_lists_only(gs: ModuleType) -> None:
    assert gs.cnxml_text(CNXML) == (
        "Supply and Demand\n\nPrices signal scarcity.\n\nEquilibrium\n\n"
        "- Buyers want less\n- Sellers offer more"
    )


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, str]:
    """A folder of mirrors holding one repository, `owner+name/repo`, and its commit."""
    work = tmp_path / "work"
    (work / "content" / "posts").mkdir(parents=True)
    (work / "content" / "posts" / "a.md").write_text("---\ntitle: A\n---\n\nHello there.\n")
    (work / "big.bin").write_bytes(b"\0" * 10)
    git("init", "-q", cwd=work)
    git("add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work).strip()
    mirrors = tmp_path / "mirrors"
    git("clone", "-q", "--bare", str(work), str(mirrors / "owner+name" / "repo"), cwd=tmp_path)
    return mirrors, commit


def test_a_pinned_commit_is_exported_from_a_mirror_once(
    gs: ModuleType, mirror: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirrors, commit = mirror
    monkeypatch.setenv("SCRIBE_GIT_MIRRORS", str(mirrors))
    monkeypatch.setattr(gs, "EXPORTED", tmp_path / "exported")
    monkeypatch.setitem(gs.PINNED, "owner/name", (commit, ("content/posts",)))
    root = gs.exported("owner/name")
    assert (root / "content" / "posts" / "a.md").read_text().endswith("Hello there.\n")
    assert not (root / "big.bin").exists()  # only the folders named
    assert gs.package("owner/name") == f"git:owner/name@{commit}"
    (root / "content" / "posts" / "a.md").unlink()
    assert gs.exported("owner/name") == root  # not exported again
    assert not (root / "content" / "posts" / "a.md").exists()


def test_a_commit_the_mirror_lacks_exits_naming_the_fix(
    gs: ModuleType, mirror: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirrors, _ = mirror
    monkeypatch.setenv("SCRIBE_GIT_MIRRORS", str(mirrors))
    monkeypatch.setattr(gs, "EXPORTED", tmp_path / "exported")
    monkeypatch.setitem(gs.PINNED, "owner/name", ("0" * 40, ("content",)))
    with pytest.raises(
        SystemExit, match="cannot export owner/name@000000000000.*SCRIBE_GIT_MIRRORS"
    ):
        gs.exported("owner/name")
