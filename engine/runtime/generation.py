"""Streaming generation: one interface for every door.

`Generator.stream(prompt, options, cancel)` returns a `Stream` (stream.py): text deltas plus the
figures of that one generation. The pipeline: a `LoadedModel` (models.py: files, tokenizer,
card) -> a backend (backend.py's decision table: numpy, torch, ONNX Runtime or transformers, its
derived weights prepared first) -> this decode loop. The backend keeps the cache of the last
prompt, so a new prompt that shares a prefix with the previous one only feeds the new tokens.
Logits are numpy arrays and sampling is numpy's: this loop imports no torch, so a model on the
numpy backend starts without it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from scribe.engine.errors import ScribeError
from scribe.engine.runtime import threads
from scribe.engine.runtime.backend import open_backend
from scribe.engine.runtime.detokenize import IncrementalDecoder
from scribe.engine.runtime.healing import BlankTokens, HealedStart, split_trailing_blanks
from scribe.engine.runtime.models import LoadedModel
from scribe.engine.runtime.options import GenerationOptions
from scribe.engine.runtime.sampling import choose_token
from scribe.engine.runtime.stops import StopFilter
from scribe.engine.runtime.stream import Stream, StreamStats
from scribe.engine.runtime.text_tokens import TextEncoder, is_framed, reads_frames

# Characters kept from the end of a huge text prompt before tokenizing it: far more than any
# window needs, so the token tail is exact, but a 1 MB draft does not cost a 1 MB tokenization.
CHARS_PER_TOKEN_BOUND = 64


ANSWER_RETRIES = 2


class EmptyAnswer(ScribeError):
    """Every try at an answer came back empty."""


class Generator:
    """One loaded model's decode loop, on the backend backend.py picks for it; one request at a
    time."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.tokenizer = loaded.generation_tokenizer
        self._text = TextEncoder(self.tokenizer)
        self.n_positions = loaded.n_positions
        self._lock = threading.Lock()
        self._backend = open_backend(loaded)
        self.precision = self._backend.precision
        # How many threads each decode step uses (adaptive), in the pool the backend runs on
        # (torch's); a benchmark may swap in a fixed one. A backend that sizes its own pool
        # (ONNX Runtime, numpy) is left alone.
        pool = self._backend.threads
        cores = threads.available_cores() if pool is not None else 1
        self.decode_threads = threads.DecodeThreads(cores, pool or threads.FIXED)
        self._markers = self._fim_marker_ids(loaded)
        self._blank_tokens: BlankTokens | None = None  # made on the first healed start

    def _fim_marker_ids(self, loaded: LoadedModel) -> np.ndarray | None:
        """The ids of a FIM model's marker tokens: the model may write them in plain text (it
        saw them in training), but an answer or a middle never contains one, so they are never
        sampled."""
        fim = loaded.card.fim
        ids = fim.token_ids(self.encode) if fim is not None else None
        return np.array(ids, dtype=np.int64) if ids else None

    @property
    def model(self) -> Any:
        """transformers' model (loaded on first use when the fast path read the files itself)."""
        return self.loaded.model

    # -- tokens -----------------------------------------------------------------------------
    @reads_frames
    def encode(self, text: str) -> list[int]:
        """The one way text becomes ids, in every door: the user's text is plain text (a
        `<|endoftext|>` typed in a document is its characters); only what the prompt's builder
        wrapped in text_tokens.frame() may hold control tokens."""
        return self._text.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(
            ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def prompt_ids(self, prompt: str | list[int], max_new_tokens: int) -> list[int]:
        """The prompt's token ids, keeping the tail that fits n_positions - max_new_tokens."""
        return self._prompt_tokens(prompt, max_new_tokens, heal=False)[0]

    def _prompt_tokens(
        self, prompt: str | list[int], max_new_tokens: int, heal: bool
    ) -> tuple[list[int], str]:
        """The prompt's ids and, when healing a text prompt, the blanks cut off its end."""
        room = max(1, self.n_positions - min(max_new_tokens, self.n_positions - 1))
        blanks = ""
        if isinstance(prompt, str):
            # A framed prompt was fitted by its builder; cutting it could split a frame mark.
            tail = prompt if is_framed(prompt) else prompt[-room * CHARS_PER_TOKEN_BOUND :]
            if heal and not is_framed(prompt):
                tail, blanks = split_trailing_blanks(tail)
            prompt = self.encode(tail)
        ids = list(prompt)[-room:]
        if not ids:  # an empty prompt starts from the end-of-text token, as GPT-2 was trained
            ids = [self.loaded.eos_token_id or 0]
        return ids, blanks

    # -- generation -------------------------------------------------------------------------
    def warm(self) -> None:
        """Run one tiny forward pass so the first real request does not pay start-up costs."""
        for _ in self.stream("Hello", GenerationOptions(max_new_tokens=1, temperature=0)):
            pass

    def stream(
        self,
        prompt: str | list[int],
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
        heal: bool = False,
    ) -> Stream:
        """Text deltas (whole characters) until max tokens, EOS, a stop sequence or cancel.
        `heal`: the blanks at the end of a text prompt (a space, a line break, indentation) are
        cut off it and the reply spells them out first, in the tokens the model prefers; the
        deltas leave them out (healing.py)."""
        chosen = options or GenerationOptions()
        return Stream(lambda out: self._generate(out, prompt, chosen, cancel, heal))

    def _healed_start(self, blanks: str) -> HealedStart | None:
        if not blanks:
            return None
        if self._blank_tokens is None:
            ids = [[i] for i in range(int(self.loaded.config["vocab_size"]))]
            # The `tokenizers` object decodes 50k single tokens in one call, in Rust; a
            # transformers slow tokenizer has none and goes one by one.
            fast = getattr(self.tokenizer, "backend_tokenizer", None)
            texts = (
                fast.decode_batch(ids, skip_special_tokens=False)
                if fast is not None
                else map(self.decode, ids)
            )
            self._blank_tokens = BlankTokens(texts)
        return HealedStart(blanks, self._blank_tokens)

    def _generate(
        self,
        out: Stream,
        prompt: str | list[int],
        options: GenerationOptions,
        cancel: threading.Event | None,
        heal: bool = False,
    ) -> Iterator[str]:
        ids, blanks = self._prompt_tokens(prompt, options.max_new_tokens, heal)
        healed = self._healed_start(blanks)
        max_new = min(options.max_new_tokens, self.n_positions - len(ids))
        rng = np.random.default_rng(options.seed)  # seed None: fresh entropy
        eos = self.loaded.eos_token_id
        decoder = IncrementalDecoder(self.decode, context=ids)
        stops = StopFilter(options.stop, options.lstrip)
        stats = out.stats = StreamStats(prompt_tokens=len(ids), precision=self.precision)
        started = time.perf_counter()
        # Every token seen so far, for the repetition penalty; filled in place, never regrown.
        seen_buf = np.empty(len(ids) + max_new, dtype=np.int64)
        seen_buf[: len(ids)] = ids
        n_seen = len(ids)
        pace = self.decode_threads
        with self._lock, threads.using(pace.prefill_threads(), pace.pool):
            stats.reused_tokens, logits = self._backend.prefill(ids)
            stats.finish_reason = "length"
            for step in range(max_new):
                banned = step < options.min_new_tokens and eos is not None
                allowed = healed.allowed() if healed is not None and healed.active else None
                if self._markers is not None or banned or allowed:
                    logits = logits.copy()  # the backend's array stays as it gave it
                    if self._markers is not None:
                        logits[self._markers] = -np.inf
                    if banned:
                        logits[eos] = -np.inf
                    if allowed:  # only tokens that spell out the healed blanks
                        keep = logits[allowed]
                        logits[:] = -np.inf
                        logits[allowed] = keep
                token = choose_token(logits, options, seen_buf[:n_seen], rng, len(ids))
                if healed is not None and healed.active:
                    healed.chose(healed.tokens.texts.get(token, ""))
                if step == 0:
                    stats.first_token_s = time.perf_counter() - started
                    decode_started = time.perf_counter()
                if token == eos:
                    stats.finish_reason = "eos"
                    break
                stats.new_tokens += 1
                delta = decoder.push(token)
                text = stops.feed(healed.visible(delta) if healed is not None else delta)
                if text:
                    yield text
                if stops.stopped:
                    stats.finish_reason = "stop"
                    return
                if cancel is not None and cancel.is_set():
                    stats.finish_reason = "cancelled"
                    break
                if step + 1 < max_new:
                    seen_buf[n_seen] = token
                    n_seen += 1
                    pace.begin()
                    logits = self._backend.feed([token])
                    pace.end()
                    stats.decode_s = time.perf_counter() - decode_started
            rest = decoder.flush()
            tail = stops.feed(healed.visible(rest) if healed is not None else rest)
            if stops.stopped:
                stats.finish_reason = "stop"
            else:
                tail += stops.flush()
            if tail:
                yield tail

    def answer(
        self,
        prompt: str | list[int],
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
        retries: int = ANSWER_RETRIES,
        heal: bool = False,
    ) -> Stream:
        """Like `stream`, but never a silent blank: an answer that ended with nothing but
        whitespace (the model ended the text at once, or met a stop) is tried again with
        sampling and a fresh seed (blanks up to max tokens are an answer);
        after `retries` more tries, EmptyAnswer says so. Whitespace is held back until visible
        text follows, so a retried attempt leaves nothing on the screen. The stats are those of
        the last attempt. `heal`: as in `stream`."""
        chosen = options or GenerationOptions()
        return Stream(lambda out: self._answer(out, prompt, chosen, cancel, retries, heal))

    def _answer(
        self,
        out: Stream,
        prompt: str | list[int],
        options: GenerationOptions,
        cancel: threading.Event | None,
        retries: int,
        heal: bool,
    ) -> Iterator[str]:
        for attempt in range(retries + 1):
            held = ""
            visible = False
            deltas = self.stream(prompt, options, cancel, heal=heal)
            for delta in deltas:
                out.stats = deltas.stats
                if visible:
                    yield delta
                elif delta.strip():
                    visible = True
                    yield held + delta
                else:
                    held += delta
            out.stats = deltas.stats
            if visible or (cancel is not None and cancel.is_set()):
                return
            if deltas.stats.finish_reason == "length":
                # The model wrote blanks up to max tokens (a space at --max-tokens 1): that is
                # its answer; only one that ended (end of text, a stop) before any is empty.
                if held:
                    yield held
                return
            seed = (options.seed or 0) + attempt + 1
            options = options.updated(
                temperature=max(options.temperature, 0.8), seed=seed, min_new_tokens=8
            )
        raise EmptyAnswer(
            f"the model gave an empty answer {retries + 1} times (it ended the text at once); "
            "rephrase the input, or try a larger --model"
        )

    def complete_text(
        self, prompt: str | list[int], options: GenerationOptions | None = None
    ) -> str:
        return self.stream(prompt, options).text()

    # -- the cache, for tools that score or compare models token by token --------------------
    def next_logits(self, ids: list[int]) -> np.ndarray:
        """The logits of the token after `ids` ([vocab] float32; the cached prefix is reused, as
        in `stream`)."""
        with self._lock:
            return self._backend.prefill(list(ids))[1]

    def forget_cache(self) -> None:
        """Drop the cached prompt: the next request is computed from scratch."""
        with self._lock:
            self._backend.reset()
