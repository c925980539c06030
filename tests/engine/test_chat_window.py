"""Context windowing for chat, with exact token counts from real tokenizers,
and the 60-turn test: every prompt sent fits n_positions minus the reply reserve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scribe.engine.chat.conversations import ConversationStore
from scribe.engine.chat.session import ChatSession, Settings
from scribe.engine.errors import InputError
from scribe.engine.prompting.chat_format import ChatFormat
from scribe.engine.prompting.chat_window import (
    Exchange,
    build_window,
    reply_reserve,
)
from scribe.engine.prompting.fitting import CUT_MARK, MARGIN
from scribe.engine.prompting.templates import get_template
from tests import factory
from tests.tui.chat_fakes import FakeEngine

FMT = ChatFormat(
    system="A talk.",
    user="\n\nWriter: $message",
    assistant="\n\nAssistant: $message",
    reply="\n\nAssistant:",
)


@pytest.fixture(scope="module")
def gpt2() -> Any:
    return factory.gpt2_tokenizer()


def encoder(tokenizer: Any) -> tuple[Any, Any]:
    def encode(text: str) -> list[int]:
        return list(tokenizer.encode(text, add_special_tokens=False))

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, clean_up_tokenization_spaces=False)

    return encode, decode


def pairs(n: int, words: int = 20) -> list[Exchange]:
    return [
        Exchange(
            " ".join(f"question{i}" for _ in range(words)),
            " ".join(f"answer{i}" for _ in range(words)),
            (2 * i, 2 * i + 1),
        )
        for i in range(n)
    ]


def test_everything_fits_exactly_as_formatted(gpt2: Any) -> None:
    encode, decode = encoder(gpt2)
    window = build_window(
        FMT,
        [Exchange("Hi", "Hello!", (1, 2))],
        "Write a line",
        n_positions=1024,
        reserve=200,
        encode=encode,
        decode=decode,
    )
    assert window.prompt == (
        "A talk.\n\nWriter: Hi\n\nAssistant: Hello!\n\nWriter: Write a line\n\nAssistant:"
    )
    assert window.used == len(encode(window.prompt)) == 25
    assert window.first_included == 0 and window.in_window == {1, 2}
    assert window.meter() == "25/1024 (200)"
    assert not window.cut_current


def test_newest_whole_pairs_that_fit_and_no_more(gpt2: Any) -> None:
    encode, decode = encoder(gpt2)
    history = pairs(10)
    pinned = len(encode("A talk.")) + len(encode(FMT.user_turn("Now?") + FMT.reply))
    pair_cost = [
        len(encode(FMT.user_turn(p.user) + FMT.assistant_turn(p.assistant))) for p in history
    ]
    # Room for exactly three pairs (the newest three) and a bit, not four.
    n_positions = pinned + sum(pair_cost[-3:]) + 5 + 100 + MARGIN
    window = build_window(
        FMT, history, "Now?", n_positions=n_positions, reserve=100, encode=encode, decode=decode
    )
    assert window.first_included == 7
    assert window.in_window == {14, 15, 16, 17, 18, 19}
    assert "question6" not in window.prompt and "answer6" not in window.prompt
    assert window.prompt.count("question7") == 20 and window.prompt.count("answer9") == 20
    assert window.used == len(encode(window.prompt)) <= n_positions - 100 - MARGIN
    # Whole pairs only: a user turn never appears without its reply.
    assert window.prompt.count("Writer:") == window.prompt.count("Assistant:")


def test_history_stops_at_the_first_pair_that_does_not_fit(gpt2: Any) -> None:
    encode, decode = encoder(gpt2)
    history = [Exchange("a " * 300, "b", (1, 2)), Exchange("short", "reply", (3, 4))]
    history.append(Exchange("x " * 200, "y", (5, 6)))
    window = build_window(
        FMT, history, "ok", n_positions=512, reserve=100, encode=encode, decode=decode
    )
    # The newest (200 tokens) fits; the middle one would too, but the window stays contiguous
    # only if nothing older is skipped, so it is in; the 300-token one is out.
    assert window.first_included == 1
    assert window.in_window == {3, 4, 5, 6}


def test_overlong_current_message_is_cut_in_the_middle(gpt2: Any) -> None:
    encode, decode = encoder(gpt2)
    text = "BEGIN " + "middle words here " * 400 + "END"
    window = build_window(
        FMT, pairs(3), text, n_positions=256, reserve=64, encode=encode, decode=decode
    )
    assert window.cut_current
    assert window.first_included == 3  # no room left for history
    assert "Writer: BEGIN" in window.prompt and window.prompt.endswith("END\n\nAssistant:")
    assert CUT_MARK in window.prompt
    assert window.used == len(encode(window.prompt)) <= 256 - 64 - MARGIN
    assert window.used >= 256 - 64 - MARGIN - 8  # and it uses the room it has


def test_continue_template_keeps_the_tail(gpt2: Any) -> None:
    encode, decode = encoder(gpt2)
    template = get_template("continue")
    text = "Opening line. " + "The story goes on. " * 300 + "Last words"
    window = build_window(
        FMT,
        [],
        text,
        n_positions=256,
        reserve=64,
        encode=encode,
        decode=decode,
        frame=template,
        cut_mode=template.cut,
    )
    assert window.cut_current and template.cut == "tail"
    assert window.prompt.endswith("The story goes on. Last words")
    assert "Opening line" not in window.prompt and CUT_MARK not in window.prompt
    assert window.prompt.startswith("A talk.\n\n")
    assert window.used == len(encode(window.prompt)) <= 256 - 64 - MARGIN


def test_template_frame_is_pinned_around_the_message(gpt2: Any) -> None:
    encode, decode = encoder(gpt2)
    template = get_template("summarize")
    window = build_window(
        FMT,
        pairs(50),
        "A long day at sea.",
        n_positions=300,
        reserve=80,
        encode=encode,
        decode=decode,
        frame=template,
    )
    assert window.prompt.endswith("\n\nA long day at sea.\n\nTL;DR:")
    assert window.prompt.startswith("A talk.")
    assert 0 < window.first_included < 50
    assert window.used == len(encode(window.prompt)) <= 300 - 80 - MARGIN


def test_overlong_system_prompt_is_cut_to_half_the_budget(gpt2: Any) -> None:
    encode, decode = encoder(gpt2)
    system = "Rule one. " + "Be kind. " * 500 + "Final rule."
    window = build_window(
        FMT, [], "Hi", n_positions=256, reserve=64, encode=encode, decode=decode, system=system
    )
    assert window.cut_system and window.prompt.startswith("Rule one.")
    assert "Final rule." in window.prompt and window.prompt.endswith("Writer: Hi\n\nAssistant:")
    assert window.used <= 256 - 64 - MARGIN


def test_a_frame_bigger_than_the_window_is_a_clear_error(gpt2: Any) -> None:
    encode, decode = encoder(gpt2)
    template = get_template("fix-grammar")  # a few-shot frame of ~70 tokens
    with pytest.raises(InputError, match="template frame alone needs .* tokens"):
        build_window(
            FMT, [], "x", n_positions=60, reserve=10, encode=encode, decode=decode, frame=template
        )


def test_reply_reserve_is_capped_at_a_quarter_of_the_window() -> None:
    assert reply_reserve(200, 1024) == 200
    assert reply_reserve(200, 128) == 32
    assert reply_reserve(500, 1024) == 256


def test_model_card_chat_format_is_preferred() -> None:
    chat = {"system": "", "user": "<u>$message", "assistant": "<a>$message", "reply": "<a>"}
    card = {"chat": chat}
    session = ChatSession(None, FakeLoader(FakeEngine(card=card)))
    session.load_model(None)
    window = session.window("hi")
    assert window is not None and window.prompt == "<u>hi<a>"
    assert session.options().stop == ("\n<u>", "\n<a>")


class FakeLoader:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __call__(self, spec: str | None) -> Any:
        return self.engine


def _sixty_turns(session: ChatSession, count: Any, limit: int) -> list[int]:
    used = []
    for turn in range(60):
        words = " ".join(["story", "line", str(turn)] * (3 + (turn * 7) % 40))
        reply = session.send(f"Turn {turn}: {words}")
        assert count(reply.window.prompt) == reply.window.used
        assert reply.window.used <= limit, (turn, reply.window.used, limit)
        reply.run()
        used.append(reply.window.used)
    return used


@pytest.fixture
def one_torch_thread() -> Any:
    """A tiny model runs several times faster on one thread on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_sixty_turns_with_the_real_tiny_model(tiny_model_dir: Path, one_torch_thread: Any) -> None:
    """Real model, real tokenizer, real generator: every prompt fits n_positions - reserve, and the
    generator never had to drop a token of it."""
    store = ConversationStore()
    options = {"temperature": 0.0, "max_new_tokens": 6}
    session = ChatSession(store, settings=Settings(system="A chat.", options=options))
    engine = session.load_model(str(tiny_model_dir))
    reserve = session.reserve()
    assert engine.n_positions == 128 and reserve == 6
    windows = []
    for turn in range(60):
        repeats = (turn * 7) % 13 if turn % 3 == 0 else turn % 2  # mostly short, some long
        words = " ".join(["story", "line", str(turn)] * repeats)
        reply = session.send(f"Turn {turn}: {words}")
        ids = engine.encode(reply.window.prompt)
        assert len(ids) == reply.window.used <= 128 - reserve
        reply.run()
        assert reply.stats is not None
        assert reply.stats.prompt_tokens == len(ids)  # the generator dropped nothing
        windows.append(reply.window)
    assert any(w.cut_current for w in windows)  # some turns alone were too long
    assert any(0 < w.first_included < w.exchanges for w in windows)  # history was windowed
    assert len(store.messages(session.conversation_id)) == 120


def test_sixty_turns_at_gpt2_size_with_exact_gpt2_counts(gpt2: Any) -> None:
    """The GPT-2 tokenizer and window (1024 positions), long replies from a scripted engine."""
    encode, decode = encoder(gpt2)
    engine = FakeEngine(replies=["word " * 150], n_positions=1024)
    engine.encode, engine.decode = encode, decode  # type: ignore[method-assign]
    session = ChatSession(ConversationStore(), FakeLoader(engine))
    session.load_model(None)
    limit = 1024 - session.reserve()
    assert session.reserve() == 200
    used = _sixty_turns(session, lambda text: len(encode(text)), limit)
    assert max(used) > limit - 60  # the window really filled up
    for prompt in engine.prompts:
        assert len(encode(prompt)) <= limit
    window = session.window()
    assert window is not None and 0 < window.first_included < 60


def _conversation_prompts(gpt2: Any, sticky: bool) -> tuple[list[str], list[Any]]:
    """Turn after turn of a long chat, each window built after the previous one."""
    encode, decode = encoder(gpt2)
    history = pairs(40, words=12)
    prompts, windows = [], []
    keep_from = None
    for turn in range(1, 40):
        window = build_window(
            FMT,
            history[:turn],
            f"next {turn}?",
            n_positions=1024,
            reserve=200,
            encode=encode,
            decode=decode,
            keep_from=keep_from if sticky else None,
        )
        keep_from = window.start_key
        prompts.append(window.prompt)
        windows.append(window)
    return prompts, windows


def test_window_start_is_sticky_so_the_cached_prompt_is_extended(gpt2: Any) -> None:
    """A moving window start changes every token's position, so nothing cached can be reused;
    a sticky start makes most turns an extension of the previous prompt, and each forced re-cut
    frees a third of the budget."""
    encode, _ = encoder(gpt2)
    budget = 1024 - 200 - MARGIN

    def extensions(prompts: list[str]) -> int:
        return sum(
            new.startswith(old[: old.rindex("\n\nWriter:")])
            for old, new in zip(prompts, prompts[1:], strict=False)
        )

    sticky, sticky_windows = _conversation_prompts(gpt2, sticky=True)
    greedy, greedy_windows = _conversation_prompts(gpt2, sticky=False)
    full = [i for i, w in enumerate(greedy_windows) if w.first_included > 0]
    assert len(full) > 10  # the conversation outgrew the window
    assert extensions(greedy[full[0] :]) == 0  # greedy moves the start every turn
    recuts = [
        i
        for i in range(1, len(sticky_windows))
        if sticky_windows[i].first_included != sticky_windows[i - 1].first_included
    ]
    assert 0 < len(recuts) <= len(full) // 3
    assert extensions(sticky) >= len(sticky) - 1 - len(recuts)
    for i in recuts:
        assert sticky_windows[i].used <= budget * (1 - 1 / 3) + 20  # room left to grow
    for window in sticky_windows:
        assert window.used == len(encode(window.prompt)) <= budget
        assert window.first_included < window.exchanges  # the newest pair is always in


def test_a_long_chat_reuses_the_models_cache_on_most_turns(
    tiny_model_dir: Path, one_torch_thread: Any
) -> None:
    """The real generator, once the conversation is longer than the window: most turns feed only
    the last reply and the new message, because the window start stays put."""
    store = ConversationStore()
    options = {"temperature": 0.0, "max_new_tokens": 6}
    session = ChatSession(store, settings=Settings(system="A chat.", options=options))
    session.load_model(str(tiny_model_dir))
    windowed, reused = 0, 0
    for turn in range(30):
        reply = session.send(f"Hi {turn}")  # about 14 tokens a pair: several fit
        reply.run()
        if reply.window.first_included > 0:
            windowed += 1
            stats = reply.stats
            assert stats is not None
            reused += stats.reused_tokens >= stats.prompt_tokens // 2
    assert windowed >= 15
    assert reused >= windowed // 2  # without a sticky start: none
