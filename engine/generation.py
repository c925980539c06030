"""Streaming generation: one interface for every door (DESIGN.md section 4).

`Generator.stream(prompt, options, cancel)` is a plain generator of text deltas. It runs its own
KV-cache decode loop over the transformers model and keeps the cache of the last prompt, so a new
prompt that shares a prefix with the previous one only feeds the new tokens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from scribe.engine.detokenize import IncrementalDecoder
from scribe.engine.kv_cache import KVState
from scribe.engine.models import LoadedModel
from scribe.engine.options import GenerationOptions
from scribe.engine.sampling import choose_token
from scribe.engine.stops import StopFilter

# Characters kept from the end of a huge text prompt before tokenizing it: far more than any
# window needs, so the token tail is exact, but a 1 MB draft does not cost a 1 MB tokenization.
CHARS_PER_TOKEN_BOUND = 64


@dataclass
class StreamStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0
    new_tokens: int = 0
    first_token_s: float = 0.0
    finish_reason: str = ""  # "length", "eos", "stop", "cancelled"


class Generator:
    """One loaded model and the single thread of work that runs it."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.n_positions = loaded.n_positions
        self._lock = threading.Lock()
        self._kv = KVState(self.model)
        self.last = StreamStats()

    # -- tokens -----------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

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
    ) -> Iterator[str]:
        """Yield text deltas (whole characters) until max tokens, EOS, a stop sequence or cancel."""
        options = options or GenerationOptions()
        ids = self.prompt_ids(prompt, options.max_new_tokens)
        max_new = min(options.max_new_tokens, self.n_positions - len(ids))
        generator = None
        if options.seed is not None:
            generator = torch.Generator().manual_seed(options.seed)
        eos = self.loaded.eos_token_id
        decoder = IncrementalDecoder(self.decode, context=ids)
        stops = StopFilter(options.stop)
        stats = StreamStats(prompt_tokens=len(ids))
        self.last = stats
        started = time.perf_counter()
        seen = torch.tensor(ids, dtype=torch.long)
        with self._lock:
            stats.reused_tokens, logits = self._kv.prefill(ids)
            stats.finish_reason = "length"
            for step in range(max_new):
                token = choose_token(logits, options, seen, generator)
                if step == 0:
                    stats.first_token_s = time.perf_counter() - started
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
                    seen = torch.cat([seen, torch.tensor([token])])
                    logits = self._kv.feed([token])
            tail = stops.feed(decoder.flush())
            if stops.stopped:
                stats.finish_reason = "stop"
            else:
                tail += stops.flush()
            if tail:
                yield tail

    def complete_text(self, prompt: str | list[int], options: GenerationOptions | None = None) -> str:
        return "".join(self.stream(prompt, options))
