"""The completion service on a real tiny model, in process: prefix reuse across keystrokes,
bounded prompts, cancellation, status figures."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from scribe.engine.runtime.stream import Stream
from scribe.plugins.servers.completion_service import CompletionRequest, CompletionService

WAIT = 120
WORDS = "the boats were coming home and she looked out at the sea ".split()


@pytest.fixture(scope="module")
def service(tiny_model_dir: Path):
    svc = CompletionService(str(tiny_model_dir), debounce_ms=0, max_tokens=8)
    svc.start()
    yield svc
    svc.close()


def at_end(text: str, document: str = "doc", **kw) -> CompletionRequest:
    return CompletionRequest(document=document, text=text, cursor=len(text), **kw)


def long_text(n_words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


def test_loads_once_and_reports_warm(service: CompletionService) -> None:
    suggestion = service.complete_now(at_end("It was a bright cold day in April, and the"))
    assert suggestion is not None and suggestion.text.strip()
    status = service.status()
    assert status["state"] == "warm" and status["model"]
    assert status["served"] >= 1 and status["latency_ms"]["p50"] is not None


def test_a_one_word_edit_near_the_end_reuses_the_cached_prefix(service: CompletionService) -> None:
    # Longer than the tiny model's 128-position window, so the prompt window must cut it.
    text = long_text(300)
    first = service.complete_now(at_end(text, "reuse"))
    edited = text[: text.rindex(" ") + 1] + "lighthouse"  # replace the last word
    second = service.complete_now(at_end(edited, "reuse"))
    assert first is not None and second is not None
    assert second.prompt_tokens <= 128 - 8
    # Everything up to the edited word came from the cache (BPE may re-merge one more token).
    new_word = len(service.generator.encode(" lighthouse"))
    assert second.reused_tokens >= second.prompt_tokens - new_word - 1
    assert second.reused_tokens > 0.5 * second.prompt_tokens


def test_a_huge_document_still_gets_a_bounded_prompt(service: CompletionService) -> None:
    text = long_text(1_000_000)[:5_000_000]
    suggestion = service.complete_now(at_end(text, "huge"))
    assert suggestion is not None and suggestion.prompt_tokens <= 128 - 8


def test_cancel_stops_the_generation(service: CompletionService) -> None:
    class StopAfterFirstDelta:
        """The real generator, with the cancel event set as soon as a delta comes out."""

        def __init__(self, real, cancel: threading.Event) -> None:
            self.real, self.cancel = real, cancel

        def __getattr__(self, name):
            return getattr(self.real, name)

        def stream(self, prompt, options, cancel=None):
            self.inner = self.real.stream(prompt, options, cancel=cancel)

            def deltas(out: Stream):
                try:
                    for delta in self.inner:
                        self.cancel.set()
                        out.stats = self.inner.stats
                        yield delta
                finally:
                    self.inner.close()  # frees the generator's lock

            return Stream(deltas)

    cancel = threading.Event()
    real = service.generator
    wrapper = service.generator = StopAfterFirstDelta(real, cancel)
    try:
        request = at_end("It was a bright cold day", "c", max_tokens=50)
        result = service.complete(request, cancel)
    finally:
        service.generator = real
    assert result is None
    assert wrapper.inner.stats.new_tokens <= 2  # of 50 allowed


def test_a_typed_space_is_not_doubled(service: CompletionService) -> None:
    plain = service.complete_now(at_end("It was a bright cold day in April, and the", "s"))
    spaced = service.complete_now(at_end("It was a bright cold day in April, and the ", "s"))
    assert plain is not None and spaced is not None
    assert plain.text.startswith(" ")
    assert spaced.text == plain.text[1:]
