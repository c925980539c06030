"""Streaming generation: one interface for every door.

`Generator.stream(prompt, options, cancel)` returns a `Stream` (stream.py): text deltas plus the
figures of that one generation. It runs its own KV-cache decode loop and keeps the cache of the
last prompt, so a new prompt that shares a prefix with the previous one only feeds the new
tokens. A plain GPT-2 runs on scribe's lean forward (gpt2/forward.py: preallocated cache,
quantized weights per `loaded.precision`, tensors read straight from the files by
gpt2/checkpoint.py or taken from a transformers model); any other model runs through
transformers' own forward (kv_cache.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from scribe.engine.errors import ScribeError
from scribe.engine.runtime import threads
from scribe.engine.runtime.detokenize import IncrementalDecoder
from scribe.engine.runtime.gpt2 import forward, onnx_int4, quantize
from scribe.engine.runtime.gpt2.checkpoint import Shape
from scribe.engine.runtime.kv_cache import FastKVState, KVState
from scribe.engine.runtime.models import LoadedModel
from scribe.engine.runtime.options import GenerationOptions
from scribe.engine.runtime.sampling import choose_token
from scribe.engine.runtime.stops import StopFilter
from scribe.engine.runtime.stream import Stream, StreamStats

# Characters kept from the end of a huge text prompt before tokenizing it: far more than any
# window needs, so the token tail is exact, but a 1 MB draft does not cost a 1 MB tokenization.
CHARS_PER_TOKEN_BOUND = 64


ANSWER_RETRIES = 2


@dataclass(frozen=True)
class Request:
    """What one `stream` or `answer` call was asked."""

    prompt: str | list[int]
    options: GenerationOptions
    cancel: threading.Event | None


class EmptyAnswer(ScribeError):
    """Every try at an answer came back empty."""


class Generator:
    """One loaded model and the single thread of work that runs it."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.tokenizer = loaded.text
        self.n_positions = loaded.n_positions
        self._lock = threading.Lock()
        self._kv = self._make_state(loaded)
        # How many threads each decode step uses (adaptive); a benchmark may swap in a fixed one.
        # ONNX Runtime runs int4 on threads of its own and torch only samples, on one thread, so
        # that torch's pool does not spin against ONNX Runtime's (1.2 ms a token at GPT-2 medium).
        on_onnx = isinstance(self._kv, onnx_int4.OrtKVState)
        self.decode_threads = threads.DecodeThreads(1 if on_onnx else threads.available_cores())
        self._markers = self._fim_marker_ids(loaded)

    def _fim_marker_ids(self, loaded: LoadedModel) -> torch.Tensor | None:
        """The ids of a FIM model's marker tokens: the model may write them in plain text (it
        saw them in training), but an answer or a middle never contains one, so they are never
        sampled."""
        fim = loaded.card.get("fim")
        if not isinstance(fim, dict):
            return None
        ids = []
        for key in ("prefix", "suffix", "middle"):
            marker = fim.get(key)
            encoded = self.tokenizer.encode(marker) if isinstance(marker, str) else []
            if len(encoded) == 1:
                ids.append(encoded[0])
        return torch.tensor(ids, dtype=torch.long) if ids else None

    @property
    def model(self) -> Any:
        """transformers' model (loaded on first use when the fast path read the files itself)."""
        return self.loaded.model

    def _make_state(self, loaded: LoadedModel) -> KVState:
        """The fast GPT-2 path when the model allows it, else transformers' own forward."""
        precision = loaded.precision
        if loaded.weights is not None:  # a plain GPT-2 read without transformers
            weights = loaded.weights
        elif forward.supports(loaded.model):
            weights = forward.model_weights(loaded.model)
        else:
            self.precision = "transformers"
            return KVState(loaded.model)
        cached = None
        has_folder = (loaded.path / "config.json").exists()
        if precision == "int4" and has_folder and onnx_int4.available():
            # 4-bit weights read as 4 bits, on ONNX Runtime's kernels (else widened to int8).
            self.precision = precision
            return onnx_int4.open_state(
                loaded.path, weights, loaded.config, threads.available_cores()
            )
        if precision != "fp32" and has_folder:
            cached = quantize.load_cached(loaded.path, precision)
        fast = forward.FastGPT2(Shape.from_config(loaded.config), weights, precision, cached)
        if precision != "fp32":
            if has_folder and cached is None:
                quantize.save_cached(loaded.path, precision, fast.quantized)
            # The linears run from their own packed copies; the stored forms were only needed
            # for the cache file, and keeping them would hold every matrix twice.
            fast.quantized.clear()
        self.precision = precision
        return FastKVState(fast)

    # -- tokens -----------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(
            ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def prompt_ids(self, prompt: str | list[int], max_new_tokens: int) -> list[int]:
        """The prompt's token ids, keeping the tail that fits n_positions - max_new_tokens."""
        room = max(1, self.n_positions - min(max_new_tokens, self.n_positions - 1))
        if isinstance(prompt, str):
            prompt = self.encode(prompt[-room * CHARS_PER_TOKEN_BOUND :])
        ids = list(prompt)[-room:]
        if not ids:  # an empty prompt starts from the end-of-text token, as GPT-2 was trained
            ids = [self.loaded.eos_token_id or 0]
        return ids

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
    ) -> Stream:
        """Text deltas (whole characters) until max tokens, EOS, a stop sequence or cancel."""
        request = Request(prompt, options or GenerationOptions(), cancel)
        return Stream(lambda out: self._generate(out, request))

    def _generate(self, out: Stream, request: Request) -> Iterator[str]:
        prompt, options, cancel = request.prompt, request.options, request.cancel
        ids = self.prompt_ids(prompt, options.max_new_tokens)
        max_new = min(options.max_new_tokens, self.n_positions - len(ids))
        generator = None
        if options.seed is not None:
            generator = torch.Generator().manual_seed(options.seed)
        eos = self.loaded.eos_token_id
        decoder = IncrementalDecoder(self.decode, context=ids)
        stops = StopFilter(options.stop, options.lstrip)
        stats = out.stats = StreamStats(prompt_tokens=len(ids), precision=self.precision)
        started = time.perf_counter()
        # Every token seen so far, for the repetition penalty; filled in place, never regrown.
        seen_buf = torch.empty(len(ids) + max_new, dtype=torch.long)
        seen_buf[: len(ids)] = torch.tensor(ids, dtype=torch.long)
        n_seen = len(ids)
        pace = self.decode_threads
        with self._lock, threads.using(pace.prefill_threads()):
            stats.reused_tokens, logits = self._kv.prefill(ids)
            stats.finish_reason = "length"
            for step in range(max_new):
                if self._markers is not None:
                    logits = logits.index_fill(-1, self._markers, float("-inf"))
                if step < options.min_new_tokens and eos is not None:
                    logits = logits.index_fill(-1, torch.tensor([eos]), float("-inf"))
                token = choose_token(logits, options, seen_buf[:n_seen], generator, len(ids))
                if step == 0:
                    stats.first_token_s = time.perf_counter() - started
                    decode_started = time.perf_counter()
                if token == eos:
                    stats.finish_reason = "eos"
                    break
                stats.new_tokens += 1
                text = stops.feed(decoder.push(token))
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
                    logits = self._kv.feed([token])
                    pace.end()
                    stats.decode_s = time.perf_counter() - decode_started
            tail = stops.feed(decoder.flush())
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
    ) -> Stream:
        """Like `stream`, but never a silent blank: an answer that is only whitespace (the model
        ended the text at once, or met a stop) is tried again with sampling and a fresh seed;
        after `retries` more tries, EmptyAnswer says so. Whitespace is held back until visible
        text follows, so a retried attempt leaves nothing on the screen. The stats are those of
        the last attempt."""
        request = Request(prompt, options or GenerationOptions(), cancel)
        return Stream(lambda out: self._answer(out, request, retries))

    def _answer(self, out: Stream, request: Request, retries: int) -> Iterator[str]:
        prompt, options, cancel = request.prompt, request.options, request.cancel
        for attempt in range(retries + 1):
            held = ""
            visible = False
            deltas = self.stream(prompt, options, cancel)
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
    def next_logits(self, ids: list[int]) -> torch.Tensor:
        """The logits of the token after `ids` (the cached prefix is reused, as in `stream`)."""
        with self._lock, torch.inference_mode():
            return self._kv.prefill(list(ids))[1]

    def forget_cache(self) -> None:
        """Drop the cached prompt: the next request is computed from scratch."""
        with self._lock:
            self._kv.reset()
