"""Fitting text into the model's window with exact token counts."""

from __future__ import annotations

from collections.abc import Callable

from scribe.engine.prompting.templates import Template
from scribe.engine.runtime.text_tokens import Framed, prompt_encoder

Encode = Callable[[str], list[int]]
Decode = Callable[[list[int]], str]

CUT_MARK = "\n[...]\n"
MARGIN = 8  # tokens kept free: BPE can merge differently where pieces are joined


def cut_text(text: str, budget: int, mode: str, encode: Encode, decode: Decode) -> str:
    """Shorten `text` to at most `budget` tokens: keep its end ("tail") or both ends ("middle")."""
    ids = encode(text)
    if len(ids) <= budget:
        return text
    if budget <= 0:
        return ""
    if mode == "tail":
        return decode(ids[-budget:])
    mark = len(encode(CUT_MARK))
    keep = max(budget - mark, 2)
    head, tail = keep // 2, keep - keep // 2
    return decode(ids[:head]) + CUT_MARK + decode(ids[-tail:])


def fit_template(
    template: Template,
    values: dict[str, str],
    window: int,
    reserve: int,
    encode: Encode,
    decode: Decode,
) -> Framed:
    """Render the template with $input cut (template's `cut` mode) so the whole prompt fits
    `window - reserve` tokens; the frame and other variables stay whole."""
    budget = window - reserve - MARGIN
    encode = prompt_encoder(encode)
    text = values.get("input", "")
    frame = template.render({**values, "input": ""})
    room = budget - len(encode(frame))
    if "input" in template.variables and room < len(encode(text)):
        text = cut_text(text, max(room, 0), template.cut, encode, decode)
    return template.render({**values, "input": text})
