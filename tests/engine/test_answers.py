"""Answers, not blanks: a template's leading whitespace does not meet its own stop, and an answer
that is only whitespace is tried again with sampling, then reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from scribe.engine.prompting.templates import get_template
from scribe.engine.runtime.generation import EmptyAnswer, Generator
from scribe.engine.runtime.models import load
from scribe.engine.runtime.options import GenerationOptions
from scribe.engine.runtime.stops import StopFilter
from scribe.engine.runtime.stream import Stream


def test_leading_whitespace_is_dropped_before_stops_apply() -> None:
    plain = StopFilter(("\n\n",))
    assert plain.feed("\n\nSummary.") == "" and plain.stopped  # the old, empty answer
    strip = StopFilter(("\n\n",), lstrip=True)
    assert strip.feed("\n") == "" and strip.feed("\n Summary") == "Summary"
    assert strip.feed(" ends.\n\nmore") == " ends." and strip.stopped


@pytest.mark.parametrize("name", ["summarize", "fix-grammar", "title", "rewrite", "expand", "chat"])
def test_answering_templates_strip_their_answers(name: str) -> None:
    template = get_template(name)
    assert template.apply_options(GenerationOptions()).lstrip is True
    assert get_template("continue").apply_options(GenerationOptions()).lstrip is False


class Scripted(Generator):
    """A real generator whose attempts are scripted, to see what `answer` makes of them."""

    def __init__(self, loaded, attempts: list[list[str]]) -> None:
        super().__init__(loaded)
        self.attempts = attempts
        self.seen: list[GenerationOptions] = []

    def stream(self, prompt, options=None, cancel=None, heal=False):
        self.seen.append(options)
        attempt = self.attempts[len(self.seen) - 1]
        return Stream(lambda out: iter(attempt))


def test_a_blank_answer_is_retried_with_sampling(tiny_model_dir: Path) -> None:
    gen = Scripted(load(str(tiny_model_dir)), [["\n", "\n"], [" ", "Hello", " there"]])
    greedy = GenerationOptions(temperature=0.0)
    assert "".join(gen.answer("x", greedy)) == " Hello there"
    assert gen.seen[0].temperature == 0.0 and gen.seen[1].temperature >= 0.8
    assert gen.seen[1].seed != gen.seen[0].seed


def test_blank_after_every_try_is_reported(tiny_model_dir: Path) -> None:
    gen = Scripted(load(str(tiny_model_dir)), [["\n"], [], ["  "]])
    with pytest.raises(EmptyAnswer, match="empty answer 3 times"):
        list(gen.answer("x", GenerationOptions()))


def test_a_template_option_lstrip_must_be_a_boolean(tmp_path: Path, monkeypatch) -> None:
    from scribe.engine import paths
    from scribe.engine.errors import ScribeError

    folder = paths.config_dir() / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "odd.toml").write_text('prompt = "$input"\n[options]\nlstrip = "yes"\n')
    with pytest.raises(ScribeError, match="lstrip must be true or false"):
        get_template("odd")


def test_a_fim_model_never_writes_its_markers_in_plain_text() -> None:
    """The default model saw <|fim_suffix|> after many a half line in training; a continuation
    (or a middle) never contains one, so the engine never samples them."""
    gen = Generator(load(None))
    options = GenerationOptions(temperature=1.0, max_new_tokens=120, seed=3)
    for prompt in ("def read_config(path):\n    ", "The purpose of this document is"):
        assert "<|fim_" not in gen.complete_text(prompt, options)


def test_min_new_tokens_holds_end_of_text_back(tiny_model_dir: Path) -> None:
    gen = Generator(load(str(tiny_model_dir)))
    options = GenerationOptions(temperature=0.0, max_new_tokens=12, min_new_tokens=12)
    stream = gen.stream("The", options)
    stream.text()
    assert stream.stats.new_tokens == 12 and stream.finish_reason == "length"
