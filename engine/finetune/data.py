"""Reading training data into documents: text files and folders, JSONL prompt/completion pairs,
and JSONL chat transcripts. Each document is a list of segments marked trainable or context-only.

Formats are detected per file. Every problem is one InputError naming the file (and line)
and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from scribe.engine.errors import InputError
from scribe.engine.prompting.chat_format import ChatFormat
from scribe.engine.text_input import decode_text, read_text_file

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text", ".org", ".tex"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
# A long text file is cut into passages at paragraph breaks, so the train/val/test split by
# document also works for one big book: aim for about this many passages over all text...
PASSAGES_WANTED = 200
# ...each between these many characters.
PASSAGE_CHARS = (1_000, 20_000)
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Segment:
    text: str
    trainable: bool  # the loss is taken on these tokens


@dataclass
class Document:
    source: str  # "path" or "path:line", for messages and the dry run
    kind: str  # "text", "pair" or "chat"
    segments: list[Segment]
    eos: bool  # an end-of-text token (trainable) closes the document

    @property
    def chars(self) -> int:
        return sum(len(s.text) for s in self.segments)

    def rendered(self, mark_open: str = "⟦", mark_close: str = "⟧", eos_text: str = "") -> str:
        """The document as the model sees it, with context-only (no loss) text between marks."""
        out = []
        for seg in self.segments:
            out.append(seg.text if seg.trainable else f"{mark_open}{seg.text}{mark_close}")
        return "".join(out) + (eos_text if self.eos else "")


@dataclass
class DataFiles:
    files: list[tuple[Path, str]] = field(default_factory=list)  # (path, "text" | "jsonl")
    skipped: list[Path] = field(default_factory=list)  # files in folders with other suffixes
    piped: dict[Path, bytes] = field(default_factory=dict)  # a pipe's bytes: it reads once


def find_files(specs: list[str], exclude: Path | None = None) -> DataFiles:
    """The data files behind the DATA arguments: files as given, folders walked (sorted), a
    pipe (`<(cat notes.txt)`, /dev/stdin) read once. Nothing under `exclude` (the run's own
    output folder, when it lies inside a data folder) is data."""
    if not specs:
        raise InputError("no training data given: pass text files, folders or .jsonl files")
    found = DataFiles()
    own = exclude.resolve() if exclude is not None else None
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            inside = [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and not (own is not None and p.resolve().is_relative_to(own))
            ]
            usable = [p for p in inside if p.suffix.lower() in TEXT_SUFFIXES | JSONL_SUFFIXES]
            found.skipped += [p for p in inside if p not in usable]
            if not usable:
                raise InputError(
                    f"{path}: no .txt, .md or .jsonl files in this folder; add some or pass files"
                )
            found.files += [(p, _format_of(p)) for p in usable]
        elif path.is_file():
            found.files.append((path, _format_of(path)))
        elif path.exists():  # a pipe or terminal: read it now, since it cannot be read twice
            data = _read_pipe(path)
            found.piped[path] = data
            found.files.append((path, _format_of(path, data[:4096])))
        else:
            raise InputError(f"{path}: no such file or folder")
    return found


def _read_pipe(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if not data.strip():
        raise InputError(f"{path}: nothing came through the pipe; give it text")
    return data


def _format_of(path: Path, start: bytes | None = None) -> str:
    if path.suffix.lower() in JSONL_SUFFIXES:
        return "jsonl"
    if path.suffix.lower() in TEXT_SUFFIXES:
        return "text"
    try:  # no telling suffix: JSONL when the first non-empty line is a JSON object
        if start is None:
            with path.open("rb") as handle:
                start = handle.read(4096)
        head = start.decode("utf-8", errors="replace").lstrip()
        if head.startswith("{"):
            json.loads(head.splitlines()[0])
            return "jsonl"
    except (OSError, ValueError):
        pass
    return "text"


def read_documents(files: DataFiles, chat: ChatFormat | None) -> list[Document]:
    """All documents of all files, in file order; text files are cut into passages."""
    texts = [
        (
            path,
            fmt,
            decode_text(files.piped[path], str(path))
            if path in files.piped
            else read_text_file(
                path, max_bytes=None, empty="add text to it or leave it out of the data"
            ),
        )
        for path, fmt in files.files
    ]
    total_text = sum(len(text) for _, fmt, text in texts if fmt == "text")
    target = min(max(total_text // PASSAGES_WANTED, PASSAGE_CHARS[0]), PASSAGE_CHARS[1])
    docs: list[Document] = []
    for path, fmt, text in texts:
        if fmt == "text":
            pieces = cut_passages(text, target)
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                docs.append(Document(str(path), "text", [Segment(piece, True)], eos=last))
        else:
            docs += read_jsonl(path, text, chat)
    return docs


def cut_passages(text: str, target: int) -> list[str]:
    """Cut text into consecutive slices of about `target` characters, at paragraph breaks where
    possible (else line breaks, else spaces). The slices join back into the exact text."""
    pieces: list[str] = []
    start = 0
    n = len(text)
    while n - start > target * 3 // 2:
        end = start + target
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = text.find(sep, end, start + target * 2)
            if cut < 0:
                cut = text.rfind(sep, start + target // 2, end)
            if cut >= 0:
                cut += len(sep)
                break
        if cut < 0:
            cut = end
        pieces.append(text[start:cut])
        start = cut
    if start < n:
        pieces.append(text[start:])
    return pieces


def read_jsonl(path: Path, text: str, chat: ChatFormat | None) -> list[Document]:
    docs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        docs.append(_record_document(_json_object(line, where), where, chat))
    if not docs:
        raise InputError(f"{path}: no JSON lines; add records or leave the file out")
    return docs


def _json_object(line: str, where: str) -> dict:
    """One JSONL line as an object, or an InputError naming the file and line."""
    try:
        record = json.loads(line)
    except ValueError as err:
        raise InputError(
            f"{where}: not valid JSON ({err.msg}); each line must be one JSON object"
        ) from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: a JSON {type(record).__name__}, expected an object")
    return record


def _record_document(record: dict, where: str, chat: ChatFormat | None) -> Document:
    if "messages" in record:
        if chat is None:
            raise InputError(f"{where}: chat transcripts need a chat template (--chat-template)")
        return chat_document(record["messages"], where, chat)
    if "prompt" in record or "completion" in record:
        prompt, completion = record.get("prompt"), record.get("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str) or not completion:
            raise InputError(
                f'{where}: needs "prompt" and "completion" strings (a non-empty completion)'
            )
        segments = (
            [Segment(prompt, False), Segment(completion, True)]
            if prompt
            else [Segment(completion, True)]
        )
        return Document(where, "pair", segments, eos=True)
    if isinstance(record.get("text"), str) and record["text"]:
        return Document(where, "text", [Segment(record["text"], True)], eos=True)
    keys = ", ".join(sorted(record)) or "none"
    raise InputError(
        f'{where}: needs "prompt" + "completion", "messages", or "text" keys (found: {keys})'
    )


def chat_document(messages: object, where: str, chat: ChatFormat) -> Document:
    """A transcript rendered with the chat format. The loss covers each assistant message, the
    header of the user turn that follows it (so the model learns to hand the turn back, which the
    chat's stop sequences catch), and an end-of-text token after a final assistant turn."""
    if not isinstance(messages, list) or not messages:
        raise InputError(f'{where}: "messages" must be a non-empty list of role/content objects')
    system: str | None = None  # the format's default unless the transcript gives one
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ROLES or not isinstance(content, str):
            raise InputError(
                f'{where}: messages[{i}] needs "role" (system, user or assistant) '
                'and "content" text'
            )
        if role == "system":
            system = content
        else:
            turns.append((role, content))
    if not any(role == "assistant" for role, _ in turns):
        raise InputError(
            f"{where}: no assistant message, so nothing to learn; add one or drop the line"
        )
    opening = chat.system_text(system)
    segments = [Segment(opening, False)] if opening else []
    cue, header = chat.reply_cue(), chat.user_label()
    previous = ""
    for role, content in turns:
        if role == "assistant":
            text = chat.assistant_turn(content)
            segments += [Segment(cue, False), Segment(text[len(cue) :], True)]
        else:
            text = chat.user_turn(content)
            if previous == "assistant" and header and text.startswith(header):
                segments += [Segment(header, True), Segment(text[len(header) :], False)]
            else:
                segments.append(Segment(text, False))
        previous = role
    segments = [s for s in segments if s.text]
    return Document(where, "chat", segments, eos=previous == "assistant")
