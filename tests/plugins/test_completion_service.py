"""The completion service on a real tiny model, in process: prefix reuse across keystrokes,
bounded prompts, cancellation, status figures."""

from __future__ import annotations

import threading
import time
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

        def stream(self, prompt, options, cancel=None, heal=False):
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


def wait_for_prefills(service: CompletionService, count: int) -> None:
    """Until the service has done `count` prefills (a wait, never a timing assertion)."""
    deadline = time.monotonic() + WAIT
    while service.status()["prefilled"] < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.status()["prefilled"] == count


def test_a_prefilled_document_is_in_the_cache_for_its_first_request(
    service: CompletionService,
) -> None:
    text = "It was a bright cold day in April, and the clocks"
    before = service.status()["prefilled"]
    service.prefill("warm", lambda: at_end(text, "warm"))
    wait_for_prefills(service, before + 1)
    # A blank typed after it: the model's prompt is the prefilled one, all of it cached but
    # the one token a step always feeds.
    suggestion = service.complete_now(at_end(text + " ", "warm"))
    assert suggestion is not None
    assert suggestion.reused_tokens == suggestion.prompt_tokens - 1


def test_a_prefill_reads_the_text_as_it_is_when_the_worker_gets_to_it(
    service: CompletionService,
) -> None:
    release = threading.Event()
    busy = service.scheduler.submit("busy", lambda cancel: release.wait(WAIT))
    texts = ["draft one"]
    before = service.status()["prefilled"]
    service.prefill("moving", lambda: at_end(texts[-1], "moving"))
    texts.append("It was a bright cold day in April, and the")  # typed while the worker was busy
    release.set()
    busy.future.result(WAIT)
    wait_for_prefills(service, before + 1)
    suggestion = service.complete_now(at_end(texts[-1], "moving"))
    assert suggestion is not None and suggestion.reused_tokens == suggestion.prompt_tokens - 1


def test_partial_suggestions_are_whole_words_that_the_answer_starts_with(
    service: CompletionService,
) -> None:
    partials: list[str] = []
    request = at_end("The boats were coming home and she", "partial", max_tokens=32)
    job = service.submit(request, partial=partials.append)
    suggestion = job.future.result(WAIT)
    assert suggestion is not None
    final = suggestion.text
    for shown in partials:
        assert shown.strip() and final.startswith(shown)
        assert final[len(shown)] in " \t\n"  # it ended where a word did
    assert partials == sorted(set(partials), key=len)  # each grows the one before
    if len(final.split()) >= 3:  # two words were complete while a third was on its way
        assert partials


def test_code_suggestions_come_whole(service: CompletionService) -> None:
    partials: list[str] = []
    request = at_end("def main():\n    value = compute(", "code", language="python")
    assert service.submit(request, partial=partials.append).future.result(WAIT) is not None
    assert partials == []


def test_an_automatic_request_waits_the_adaptive_debounce() -> None:
    adaptive = CompletionService(None)
    assert adaptive.debounce_ms is None and adaptive.status()["debounce"] == "adaptive"
    fixed = CompletionService(None, debounce_ms=40)
    assert fixed.status()["debounce"] == "fixed" and fixed.status()["debounce_ms"] == 40


@pytest.mark.parametrize(
    "text",
    [
        "def read_config(path):\n    ",
        "def mean(values):\n    total = 0\n    for v in values:\n        ",
        "class Stack:\n    def push(self, item):\n        ",
    ],
)
def test_code_ghost_text_at_an_indented_line_start_is_not_empty(text: str) -> None:
    """The embedded model, on a fresh indented line: the indentation is healed (the prompt ends
    before it and the model spells it out), so the model writes the body instead of ending the
    text at once or starting a new `def`."""
    svc = CompletionService(None, debounce_ms=0)
    svc.start()
    try:
        suggestion = svc.complete_now(at_end(text, language="python"))
    finally:
        svc.close()
    assert suggestion is not None and suggestion.text.strip()
    assert not suggestion.text.lstrip().startswith(("def ", "class ")), suggestion.text
