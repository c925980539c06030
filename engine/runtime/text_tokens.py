"""Encoding a prompt so that the user's text is data: the one place text becomes token ids.

A tokenizer matches its added tokens (`<|endoftext|>`, FIM and chat markers) anywhere in the text
it is given, so a document that contains `<|fim_middle|>` would hand the model a control token.
Here text is encoded as plain text: a marker in it becomes the ordinary tokens of its characters.
Only a prompt frame's own text (a template's, a chat format's, the FIM markers) may hold control
tokens; whoever builds a prompt wraps those parts in `frame()`. The wrapping is a pair of Unicode
noncharacters around a nonce drawn at start, which never leaves the process, so text from outside
cannot forge it. A finished prompt is handed on as `Framed`: a str whose value is the text a
person reads (what tests and logs compare), carrying the marked text for the encoder.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

_NONCE = secrets.token_hex(8)
FRAME_OPEN = f"\ufdd0{_NONCE}\ufdd1"
FRAME_CLOSE = f"\ufdd1{_NONCE}\ufdd0"
_FRAME_SPAN = re.compile(f"{re.escape(FRAME_OPEN)}(.*?){re.escape(FRAME_CLOSE)}", re.DOTALL)


def frame(text: str) -> str:
    """`text` as a prompt frame's own text: the markers in it are control tokens."""
    return f"{FRAME_OPEN}{text}{FRAME_CLOSE}" if text else ""


class Framed(str):
    """A finished prompt: its str value is the readable text, `marked` the text with the frame
    marks. Slicing or joining it gives a plain str, which is all data (the safe side)."""

    marked: str

    def __new__(cls, marked: str) -> Framed:
        self = super().__new__(cls, _FRAME_SPAN.sub(r"\1", marked))
        self.marked = marked
        return self


def marked(text: str) -> str:
    """The text with its frame marks: a Framed prompt's marked text, else `text` itself."""
    return text.marked if isinstance(text, Framed) else text


def is_framed(text: str) -> bool:
    return isinstance(text, Framed) or FRAME_OPEN in text


Encode = Callable[[str], list[int]]
F = TypeVar("F", bound=Callable[..., Any])


def reads_frames(encode: F) -> F:
    """Mark an encode function as one that understands frame marks (Generator.encode)."""
    encode.reads_frames = True  # type: ignore[attr-defined]
    return encode


def prompt_encoder(encode: Encode) -> Encode:
    """`encode` for text that may hold frame marks: itself when it reads them, else (a plain
    tokenizer's encode, given by a tool or a test) one that sees the text without them."""
    if getattr(encode, "reads_frames", False):
        return encode
    return lambda text: encode(_FRAME_SPAN.sub(r"\1", marked(text)))


class TextEncoder:
    """Encodes prompts for one tokenizer: frame markers as control tokens, the rest as text.

    `tokenizer` is scribe's TextTokenizer or transformers' fast tokenizer; both expose the
    `tokenizers` object underneath as `backend_tokenizer`."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._backend = backend
        # The added tokens: text the tokenizer matches before BPE (GPT-2's <|endoftext|> is in
        # its vocabulary as well, so the vocabulary alone does not tell them).
        added = backend.get_added_tokens_decoder() if backend is not None else {}
        self.markers = {token.content: int(token_id) for token_id, token in added.items()}
        markers = self.markers
        # Longest first, so a marker that contains another is found whole.
        self._marker_re = (
            re.compile("|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True)))
            if markers
            else None
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt: text outside `frame()` spans is plain text."""
        text = marked(text)
        if FRAME_OPEN not in text:
            return self._as_text(text)
        ids: list[int] = []
        stretch: list[str] = []  # text since the last control token
        pos = 0
        for span in _FRAME_SPAN.finditer(text):
            stretch.append(text[pos : span.start()])
            inner = span.group(1)
            cut = 0
            for found in self._marker_re.finditer(inner) if self._marker_re else ():
                stretch.append(inner[cut : found.start()])
                ids += self._as_text("".join(stretch))
                ids.append(self.markers[found.group(0)])
                stretch = []
                cut = found.end()
            stretch.append(inner[cut:])
            pos = span.end()
        stretch.append(text[pos:])
        return ids + self._as_text("".join(stretch))

    def _as_text(self, text: str) -> list[int]:
        """`text` as plain text: an added token's characters are not that token."""
        if not text:
            return []
        if self._marker_re is None or not self._marker_re.search(text):
            return list(self._tokenizer.encode(text, add_special_tokens=False))
        # What the tokenizer does between added tokens, on the whole text: normalize,
        # pre-tokenize, then the BPE model on each piece.
        backend = self._backend
        if backend.normalizer is not None:
            text = backend.normalizer.normalize_str(text)
        pieces = (
            [piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(text)]
            if backend.pre_tokenizer is not None
            else [text]
        )
        return [token.id for piece in pieces for token in backend.model.tokenize(piece)]
