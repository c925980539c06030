"""Filling a prompt frame so that its own text is frame and the values put into it are data.

A template's or chat format's text may hold control markers (`<|im_start|>`, `<|endoftext|>`)
that must reach the model as control tokens; the user's text put into it never does (see
runtime/text_tokens.py).
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from scribe.engine.runtime.text_tokens import frame


def fill_framed(pattern: str, values: Mapping[str, str]) -> str:
    """`pattern` (string.Template syntax) with `values` put in: its own text wrapped in
    `frame()`, each value as it is (data). A name without a value stays as written, as
    `safe_substitute` leaves it."""
    out: list[str] = []
    pos = 0
    for match in string.Template.pattern.finditer(pattern):
        name = match.group("named") or match.group("braced")
        if name is None or name not in values:
            continue  # `$$` or a name without a value: literal text, unescaped below
        out.append(_literal(pattern[pos : match.start()]))
        out.append(values[name])
        pos = match.end()
    out.append(_literal(pattern[pos:]))
    return "".join(out)


def _literal(text: str) -> str:
    return frame(string.Template(text).safe_substitute({}))
