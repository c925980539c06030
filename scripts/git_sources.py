"""Modern general prose from public git repositories, for scripts/build_corpus.py: blog posts,
news and guides of US government teams (public domain, CC0) and open textbooks (CC-BY-4.0).

Each repository is pinned to a commit and exported (`git archive`) into build/dl/git/. The git
directory comes from a local mirror when SCRIBE_GIT_MIRRORS names a folder holding
`<owner>+<name>/repo` or `<owner>+<name>` git directories, else from a clone of GitHub.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPORTED = ROOT / "build" / "dl" / "git"

# owner/name -> the commit read (the newest one when this corpus was built) and the folders
# exported (only text: a mirror may lack a repository's large images)
BOOK = ("collections", "modules")
PINNED = {
    "18F/18f.gsa.gov": ("0a55c75e6d9bc71c80136a3867dac52356177443", ("content/posts",)),
    "GSA/digitalgov.gov": (
        "4979583206d90ff1707b097454a9b169ca9e95e4",
        ("content/news", "content/guides", "content/resources"),
    ),
    "openstax/osbooks-college-success-bundle": ("4c04b87eb2753872c2d442fe9736859ddb27bb72", BOOK),
    "openstax/osbooks-principles-economics-bundle": (
        "cd31beb103fffbc09cc81ebfe117d8c40cc12d1a",
        BOOK,
    ),
    "openstax/osbooks-world-history": ("b2ddac6d5ab41847257c1484ee9271576d1a053e", BOOK),
}


def package(repo: str) -> str:
    """The corpus manifest's name for a repository: "git:owner/name@commit"."""
    return f"git:{repo}@{PINNED[repo][0]}"


def _git_dir(repo: str) -> str:
    """A git directory holding the repository: a mirror's, or a fresh clone's."""
    flat = repo.replace("/", "+")
    mirrors = os.environ.get("SCRIBE_GIT_MIRRORS")
    if mirrors:
        for candidate in (Path(mirrors) / flat / "repo", Path(mirrors) / flat):
            if (candidate / "HEAD").exists() or (candidate / ".git").exists():
                return str(candidate)
    clone = ROOT / "build" / "dl" / "clones" / flat
    if not clone.exists():
        subprocess.run(
            ["git", "clone", "--bare", "--filter=blob:none", f"https://github.com/{repo}", clone],
            check=True,
        )
    return str(clone)


def exported(repo: str) -> Path:
    """The repository's files at its pinned commit, exported once into build/dl/git/."""
    commit, folders = PINNED[repo]
    dest = EXPORTED / f"{repo.replace('/', '+')}-{commit[:12]}"
    if (dest / ".exported").exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    try:
        archive = subprocess.run(
            ["git", "--git-dir", _git_dir(repo), "archive", "--format=tar", commit, *folders],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(
            f"build_corpus: cannot export {repo}@{commit[:12]} ({exc}); clone it from GitHub "
            "or set SCRIBE_GIT_MIRRORS to a folder of local copies"
        )
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    (dest / ".exported").write_text(commit + "\n")
    return dest


# ---------------------------------------------------------------- Hugo / Jekyll Markdown

FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
SHORTCODE = re.compile(r"\{\{[<%].*?[>%]\}\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
MD_REF_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.M)
HTML_TAG = re.compile(r"<[^>\n]{1,300}>")


def _title(front: str) -> str:
    import yaml  # PyYAML (installed with the corpus tools)

    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError:
        return ""
    title = meta.get("title") if isinstance(meta, dict) else None
    return " ".join(str(title).split()) if title else ""


LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+")


def unwrap(block: str) -> str:
    """A hard-wrapped paragraph as one line; a list as one line per item; code left as is."""
    lines = block.split("\n")
    if any(line.startswith(("    ", "\t", "```")) for line in lines):
        return block
    out: list[str] = []
    for line in lines:
        if out and not LIST_ITEM.match(line):
            out[-1] = f"{out[-1]} {line.strip()}".strip()
        else:
            out.append(LIST_ITEM.sub("- ", line).strip() if LIST_ITEM.match(line) else line.strip())
    return "\n".join(out)


def _dedent_prose(body: str) -> str:
    """Lines outside ``` fences without the indentation and quote marks that HTML layout
    leaves behind."""
    out, fenced = [], False
    for line in body.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        out.append(line if fenced else re.sub(r"^\s*(?:>\s?)*", "", line))
    return "\n".join(out)


def blog_post(text: str) -> str:
    """A Hugo or Jekyll post as its title and prose: front matter, shortcodes, links, inline
    HTML and emphasis reduced to their words."""
    match = FRONT_MATTER.match(text)
    title = _title(match.group(1)) if match else ""
    body = text[match.end() :] if match else text
    body = SHORTCODE.sub("", body)
    body = re.sub(r"\[\w+=[^\]\n]*\]", "", body)  # WordPress embeds: [youtube=...]
    body = MD_REF_DEF.sub("", body)
    body = MD_LINK.sub(r"\1", body)
    body = HTML_TAG.sub("", body)
    body = _dedent_prose(body)
    body = re.sub(r"(\*\*|__)(.+?)\1", r"\2", body)
    body = re.sub(r"^#{1,6}\s*", "", body, flags=re.M)  # headings stay as lines of their own
    blocks = re.split(r"\n[ \t]*\n", html.unescape(body))
    body = "\n\n".join(unwrap(b.strip("\n")) for b in blocks if b.strip())
    return f"{html.unescape(title)}\n\n{body}" if title else body


def read_18f() -> Iterator[tuple[str, str]]:
    """18F's blog (2014-2025): posts by the US government's digital services team."""
    root = exported("18F/18f.gsa.gov") / "content" / "posts"
    for post in sorted(root.glob("*.md")):
        yield post.stem, blog_post(post.read_text(encoding="utf-8", errors="replace"))


def read_digitalgov() -> Iterator[tuple[str, str]]:
    """Digital.gov's news, guides and resources (2013-2025), for people who run public sites."""
    root = exported("GSA/digitalgov.gov") / "content"
    for folder in ("news", "guides", "resources"):
        for page in sorted((root / folder).rglob("*.md")):
            text = blog_post(page.read_text(encoding="utf-8", errors="replace"))
            yield f"{folder}-{page.stem}", text


# ---------------------------------------------------------------- OpenStax CNXML

CNX = "{http://cnx.rice.edu/cnxml}"
SKIP = {"table", "figure", "media", "math", "equation", "exercise", "glossary", "metadata",
        "code", "preformat"}  # fmt: skip


def _words(el: ET.Element) -> str:
    return " ".join("".join(el.itertext()).split())


def cnxml_text(page: str) -> str:
    """An OpenStax module as text: its title, section titles and paragraphs, list items as
    "- item"; tables, figures, maths and exercises dropped."""
    root = ET.fromstring(page)
    lines: list[str] = []

    def walk(el: ET.Element) -> None:
        tag = el.tag.rsplit("}", 1)[-1]
        if tag in SKIP:
            return
        if tag == "title":
            lines.append(_words(el))
        elif tag == "para":
            if el.find(".//{http://www.w3.org/1998/Math/MathML}math") is None:
                lines.append(_words(el))
        elif tag == "item":
            lines.append(f"- {_words(el)}")
        else:
            for child in el:
                walk(child)

    title = root.find(f"{CNX}title")
    if title is not None:
        lines.append(_words(title))
    content = root.find(f"{CNX}content")
    if content is not None:
        walk(content)
    text = "\n\n".join(line for line in lines if line)
    return re.sub(r"(?m)^(- .*)\n\n(?=- )", r"\1\n", text)  # a list's items line by line


def openstax(repo: str) -> Iterator[tuple[str, str]]:
    """Every module of an OpenStax book repository whose licence is CC-BY-4.0 (checked in each
    collection's metadata: most of the humanities books are non-commercial and left out)."""
    root = exported(repo)
    for collection in sorted((root / "collections").glob("*.xml")):
        if "creativecommons.org/licenses/by/4.0" not in collection.read_text(encoding="utf-8"):
            sys.exit(f"build_corpus: {collection.name} of {repo} is not CC-BY-4.0; leave it out")
    for module in sorted((root / "modules").glob("*/index.cnxml")):
        yield (
            f"{repo.split('/')[1]}-{module.parent.name}",
            cnxml_text(module.read_text(encoding="utf-8")),
        )


def read_openstax() -> Iterator[tuple[str, str]]:
    """OpenStax's College Success, Principles of Economics and World History (CC-BY-4.0)."""
    for repo in PINNED:
        if repo.startswith("openstax/"):
            yield from openstax(repo)
