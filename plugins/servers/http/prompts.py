"""Turning a request into the engine's prompt, on the model's worker thread (exact token counts).

Three shapes, each built from the engine's own pieces: plain text (or token ids) whose start is
dropped when it does not fit; fill-in-the-middle when the model's card declares it (the
editor's `FimFormat`, `fim_shares`, `fim_suffix` and `PromptWindow`, so consecutive requests
share a prefix and the KV cache is reused); and chat, rendered with the model's `ChatFormat` and
fitted by `build_window`, as `scribe chat` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from scribe.engine.prompting.chat_window import Exchange, build_window, reply_reserve
from scribe.engine.prompting.editor_window import PromptWindow, fim_shares, fim_suffix
from scribe.engine.prompting.fitting import MARGIN
from scribe.engine.runtime.generation import CHARS_PER_TOKEN_BOUND
from scribe.engine.runtime.options import GenerationOptions
from scribe.engine.runtime.text_tokens import frame
from scribe.plugins.servers.http.errors import bad_request
from scribe.plugins.servers.http.queue import Plan

SNIPPET = "\n\n--- snippet ---\n\n"  # before each of llama.cpp's input_extra chunks, as it does
MAX_SLOTS = 16  # infill windows remembered per model


def reserve_for(n_positions: int, prompt_tokens: int, requested: int | None) -> int:
    """Tokens to generate: what was asked (None or negative: as many as fit), while the prompt
    keeps at least three quarters of the window (a long prompt loses its start instead)."""
    cap = max(n_positions - prompt_tokens, n_positions // 4)
    wanted = cap if requested is None or requested < 0 else requested
    return max(1, min(wanted, cap, n_positions - 1))


def text_plan(
    entry: Any,
    prompt: str | list[int],
    options: GenerationOptions,
    requested: int | None,
    suffix: str = "",
    reuse_cache: bool = True,
) -> Plan:
    """A completion of `prompt`; fill-in-the-middle when `suffix` has text and the model's card
    declares FIM, else the suffix is left out (prefix only)."""
    if suffix.strip() and entry.fim is not None and isinstance(prompt, str):
        return infill_plan(
            entry, prompt, suffix, "", [], options, requested, "suffix", reuse_cache=reuse_cache
        )
    generator = entry.generator
    n = generator.n_positions
    truncated = False
    if isinstance(prompt, str):
        head = len(prompt) - n * CHARS_PER_TOKEN_BOUND
        truncated = head > 0
        ids = generator.encode(prompt[max(0, head) :])
    else:
        ids = list(prompt)
    max_new = reserve_for(n, len(ids), requested)
    keep = n - max_new
    if len(ids) > keep:
        ids, truncated = ids[-keep:], True
    info = {"prompt_tokens": max(1, len(ids)), "truncated": truncated, "fim": False}
    return Plan(ids, options.updated(max_new_tokens=max_new), info, reuse_cache)


def _extra_block(chunks: Sequence[str], budget: int, count: Callable[[str], int]) -> str:
    """llama.cpp's input_extra: whole chunks, the newest (last) first, within `budget`."""
    kept: list[str] = []
    used = 0
    for text in reversed(chunks):
        piece = SNIPPET + text
        cost = count(piece)
        if used + cost > budget:
            break
        kept.insert(0, piece)
        used += cost
    return "".join(kept)


def infill_plan(
    entry: Any,
    prefix: str,
    suffix: str,
    middle: str,
    extra: Sequence[str],
    options: GenerationOptions,
    requested: int | None,
    slot: str,
    reuse_cache: bool = True,
    limit: Callable[[str, float], int | None] | None = None,
) -> Plan:
    """llama.cpp's /infill: [extra] PREFIX before SUFFIX after MIDDLE, where `before` is the
    prefix and the text already typed on the line (llama.cpp's `prompt`); a model without FIM
    reads extra + before. Each part has a fixed share of the window, so the window over the
    text before the cursor (kept per slot, with a start that stays put) and with it the KV cache
    survive from one keystroke to the next."""
    generator = entry.generator
    n = generator.n_positions
    encode = generator.encode

    def count(text: str) -> int:
        return len(encode(text)) if text else 0

    max_new = min(n // 4, n // 4 if requested is None or requested < 0 else max(requested, 1))
    room = n - max_new - MARGIN
    fim = entry.fim
    extra_share = room // 4 if extra else 0
    block = _extra_block(extra, extra_share, count) if extra else ""
    truncated = len(block) < sum(len(SNIPPET) + len(text) for text in extra)
    budget = room - extra_share
    text = prefix + middle
    if fim is not None:
        before_share, share = fim_shares(budget)
        after = fim_suffix(suffix, encode, share) if suffix else ""
        truncated |= len(after) < len(suffix)
        before = _window(entry, slot, before_share, encode).prompt(text, len(text))
        prompt = fim.prompt(before, after, lead=block)
    else:
        before = _window(entry, slot, budget, encode).prompt(text, len(text))
        prompt = block + before
    truncated |= len(before) < len(text)
    ids = encode(prompt)
    if len(ids) > n - max_new:  # BPE merged differently at a join: drop the oldest text
        keep = n - max_new
        head = encode(block + (frame(fim.prefix) if fim is not None else ""))
        ids, truncated = head + ids[len(ids) - keep + len(head) :], True
    info = {"prompt_tokens": len(ids), "truncated": truncated, "fim": fim is not None}
    return Plan(ids, options.updated(max_new_tokens=max_new), info, reuse_cache, limit)


def _window(entry: Any, slot: str, budget: int, encode: Callable[[str], list[int]]) -> PromptWindow:
    budget = max(1, budget)
    window = entry.windows.pop(slot, None)
    if window is None or window.budget != budget:
        window = PromptWindow(encode, budget)
    entry.windows[slot] = window  # most recent last
    while len(entry.windows) > MAX_SLOTS:
        entry.windows.pop(next(iter(entry.windows)))
    return window


def infill_limit(n_indent: int, t_max_predict_ms: float) -> Callable[[str, float], int | None]:
    """llama.cpp's infill stops: a line indented less than `n_indent` ends the text before it;
    past `t_max_predict_ms` the text ends once it holds a newline."""

    def limit(text: str, elapsed_s: float) -> int | None:
        if n_indent > 0:
            newline = text.find("\n")
            while newline >= 0:
                end = text.find("\n", newline + 1)
                line = text[newline + 1 : end if end >= 0 else len(text)]
                if line.strip() and len(line) - len(line.lstrip(" \t")) < n_indent:
                    return newline
                newline = end
        if t_max_predict_ms > 0 and elapsed_s * 1000 > t_max_predict_ms and "\n" in text:
            return len(text)
        return None

    return limit


# -- chat -----------------------------------------------------------------------------------------
ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def chat_plan(
    entry: Any,
    messages: Sequence[tuple[str, str]],
    overrides: dict[str, Any],
    stops: Sequence[str],
) -> Plan:
    """Messages rendered with the model's ChatFormat and fitted into its window the way `scribe
    chat` fits a conversation: the system prompt and the last user turn pinned, earlier turns
    newest first in whole pairs, and the window's start kept where it was while it fits."""
    from scribe.engine.prompting.templates import get_template
    from scribe.engine.runtime.options import configured_options

    generator = entry.generator
    fmt = entry.chat_format
    template = get_template("chat")
    options = template.apply_options(configured_options(GenerationOptions()))
    options = options.updated(**overrides)
    stop = [*fmt.stop, *(s for s in stops if s not in fmt.stop)]
    options = options.updated(stop=tuple(stop) or None)
    system, exchanges, current = _conversation(messages)
    keys = _keys(exchanges)
    last_start = entry.windows.get("chat:start")
    keep_from = keys.index(last_start) if last_start in keys else None
    exchanges = [Exchange(e.user, e.assistant, (i,)) for i, e in enumerate(exchanges)]
    window = build_window(
        fmt,
        exchanges,
        current,
        n_positions=generator.n_positions,
        reserve=reply_reserve(options.max_new_tokens, generator.n_positions),
        encode=generator.encode,
        decode=generator.decode,
        system=system,
        cut_mode=template.cut,
        keep_from=keep_from,
    )
    if window.first_included < len(keys):
        entry.windows["chat:start"] = keys[window.first_included]
    info = {
        "prompt_tokens": window.used,
        "truncated": window.first_included > 0 or window.cut_current or window.cut_system,
        "turns_dropped": window.first_included,
    }
    return Plan(window.prompt, options.updated(max_new_tokens=window.reserve), info)


def _conversation(messages: Sequence[tuple[str, str]]) -> tuple[str | None, list[Exchange], str]:
    """(system prompt or None, earlier exchanges, the current user turn)."""
    system = [text for role, text in messages if role in ("system", "developer")]
    turns = [(role, text) for role, text in messages if role not in ("system", "developer")]
    if not turns or turns[-1][0] == "assistant":
        raise bad_request(
            "the last message must be the user's (or a tool's): the model answers it", "messages"
        )
    exchanges: list[Exchange] = []
    for role, text in turns[:-1]:
        if role == "assistant" and exchanges and exchanges[-1].assistant is None:
            exchanges[-1] = Exchange(exchanges[-1].user, text)
        elif role == "assistant":
            exchanges.append(Exchange("", text))
        else:
            exchanges.append(Exchange(text, None))
    return ("\n\n".join(system) if system else None), exchanges, turns[-1][1]


def _keys(exchanges: Sequence[Exchange]) -> list[str]:
    """A name for each exchange that holds everything up to it: the same turn at the same place
    in the same conversation keeps its name from one request to the next, and repeated turns
    ("Thanks!") do not share one."""
    chain = hashlib.sha1(usedforsecurity=False)
    keys = []
    for exchange in exchanges:
        chain.update(f"{exchange.user}\x00{exchange.assistant}\x01".encode("utf-8", "replace"))
        keys.append(chain.copy().hexdigest())
    return keys
