"""Extractive summaries and titles, and the checks a summarize or title answer must pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from scribe.engine.errors import TemplateError
from scribe.engine.prompting.extractive import (
    plausible_summary,
    plausible_title,
    sentences,
    summary,
    title,
)
from scribe.engine.prompting.templates import _parse, get_template

ARTICLE = (
    "The city library will close for repairs next month. The roof of the library has leaked "
    "since the spring storms, and water damaged part of the children's section. During the "
    "repairs, the library will lend books from a van parked outside the town hall. My cousin "
    "once worked in a bakery on the same street. The repairs to the library roof should take "
    "about six weeks, and the library expects to reopen in early spring. Volunteers are "
    "welcome to help move the books back when the library reopens."
)


def test_sentences_split_at_ends_and_blank_lines() -> None:
    text = 'He said "Stop." Then he left!\n\nA new part? Yes. 3 cats ran.'
    assert sentences(text) == [
        'He said "Stop."',
        "Then he left!",
        "A new part?",
        "Yes.",
        "3 cats ran.",
    ]


def test_summary_keeps_central_sentences_in_order_within_the_budget() -> None:
    short = summary(ARTICLE, max_words=40)
    assert len(short.split()) <= 40
    kept = sentences(short)
    # Every sentence is the text's own, in the text's order.
    positions = [ARTICLE.index(s) for s in kept]
    assert positions == sorted(positions)
    # The aside about the cousin shares nothing with the rest: it is never chosen.
    assert "cousin" not in short
    assert kept[0] == "The city library will close for repairs next month."


def test_a_short_text_is_its_own_summary() -> None:
    assert summary("One short line.\n\nAnd  another.") == "One short line. And another."


def test_the_best_sentence_is_kept_whole_even_when_long() -> None:
    long_sentence = "The library " + "and the library roof " * 20 + "leaks."
    assert summary(long_sentence + " Cats sleep.", max_words=10) == long_sentence


@pytest.mark.parametrize(
    "answer",
    [
        "The library closes next month for six weeks of roof repairs.",
        "Library roof repairs: closed for about six weeks, books lent from a van.",
    ],
)
def test_a_grounded_short_answer_is_a_plausible_summary(answer: str) -> None:
    assert plausible_summary(ARTICLE, answer)


@pytest.mark.parametrize(
    "answer",
    [
        "- Telay, Telay",  # made-up words
        "",  # nothing
        "The Congress will propose a new policy to the Senate this year.",  # not about the text
        "The library roof is closed and the library roof is closed again.",  # a stutter
        ARTICLE + " " + ARTICLE,  # longer than the text
    ],
)
def test_noise_is_not_a_summary(answer: str) -> None:
    assert not plausible_summary(ARTICLE, answer)


def test_summarize_settles_on_the_texts_own_sentences_when_the_model_wanders() -> None:
    template = get_template("summarize")
    assert template.check == "summary" and template.checked
    good = "The library closes next month for six weeks of roof repairs."
    assert template.settle(ARTICLE, good + "\n") == good
    assert template.settle(ARTICLE, "- #12: The project is not supported.") == summary(ARTICLE)
    # An unchecked template shows the model's answer as it is.
    assert not get_template("continue").checked
    assert get_template("continue").settle(ARTICLE, " anything") == " anything"


@pytest.mark.parametrize(
    ("text", "made"),
    [
        (ARTICLE, "The city library will close for repairs next month"),
        (
            "the committee have decided that there meeting will be moved to thursday, because "
            "most of members is away and the room is booked for the whole of the week.",
            "The committee have decided that there meeting will be moved to thursday",
        ),
    ],
)
def test_a_title_is_made_from_the_central_sentence(text: str, made: str) -> None:
    assert title(text) == made


@pytest.mark.parametrize(
    ("answer", "plausible"),
    [
        ("Library Closes for Roof Repairs", True),
        ("Six weeks without a library", True),
        ("The date of the date of a date of time.", False),  # a stutter
        ("Telay Benk Highters", False),  # made-up words
        ("A Guide to the Congress and the Senate", False),  # not about the text
        ("The library\nand more", False),  # two lines
        (" ".join(["library"] + ["repairs"] * 12), False),  # too long
    ],
)
def test_title_check(answer: str, plausible: bool) -> None:
    assert plausible_title(ARTICLE, answer) is plausible


def test_title_settles_on_a_made_title_when_the_model_wanders() -> None:
    template = get_template("title")
    assert template.check == "title"
    assert template.settle(ARTICLE, " Library Closes for Roof Repairs") == (
        "Library Closes for Roof Repairs"
    )
    assert template.settle(ARTICLE, "- #12: In this example:") == title(ARTICLE)


@pytest.mark.parametrize("value", ["1", "summaries", "true"])
def test_check_must_name_a_known_check(tmp_path: Path, value: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(f'prompt = "$input"\ncheck = "{value}"\n', encoding="utf-8")
    with pytest.raises(TemplateError, match='check must be "summary" or "title"'):
        _parse(path)
