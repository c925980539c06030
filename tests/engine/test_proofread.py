"""Proofreading by rule before fix-grammar's model pass, and the check on the model's answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from scribe.engine.errors import TemplateError
from scribe.engine.prompting.proofread import plausible_fix, proofread
from scribe.engine.prompting.templates import _parse, get_template


@pytest.mark.parametrize(
    ("noisy", "clean"),
    [
        ("I will definately call you.", "I will definitely call you."),
        ("We recieved the invitation.", "We received the invitation."),
        ("i think i'm late", "I think I'm late"),
        ("We met on mondays in august.", "We met on Mondays in August."),
        ("She waited for the the bus.", "She waited for the bus."),
        ("He made a excellent point.", "He made an excellent point."),
        ("It was an big house and a hour late.", "It was a big house and an hour late."),
        ("There are alot of them.", "There are a lot of them."),
        ("He doesnt know; i cant go.", "He doesn't know; I can't go."),
        ("We could of left. Their is time.", "We could have left. There is time."),
        ("Its been long. Your welcome.", "It's been long. You're welcome."),
        ("the end. then it rained.", "The end. Then it rained."),
        # Homophones and forms told apart by the words around them.
        ("The cat slept on it's cushion.", "The cat slept on its cushion."),
        ("She has worked their for ten years.", "She has worked there for ten years."),
        ("They fixed there own car.", "They fixed their own car."),
        ("Our garden is to small.", "Our garden is too small."),
        ("We went too the beach.", "We went to the beach."),
        ("Please let me no soon.", "Please let me know soon."),
        ("Were going to be late.", "We're going to be late."),
        ("Thank you for you help.", "Thank you for your help."),
        ("Bring you own lunch.", "Bring your own lunch."),
        ("Lock it when your leaving.", "Lock it when you're leaving."),
        ("He had not fell; I have ever saw it.", "He had not fallen; I have ever seen it."),
        ("She don't cook. They doesn't.", "She doesn't cook. They don't."),
        ("The children was out.", "The children were out."),
    ],
)
def test_sure_mechanical_errors_are_fixed(noisy: str, clean: str) -> None:
    assert proofread(noisy) == clean


@pytest.mark.parametrize(
    "text",
    [
        "I use numpy and pygls to build a language server.",  # terms the model's corpus knows
        "The colour of the centre was organised by the theatre.",  # British spellings
        "It had had that that effect.",  # doubled words that can be right
        "The dog wagged its tail; I wont go; we were there.",  # its, wont, were are words
        "We may march in March; a user waited an hour for a FAQ.",
        "Ask Mr. Qzxv about parseConfig and item_count in v2.",  # names and code
        # What those rules must not touch: "to" before a verb, -ing nouns, "no" as no.
        "The plan is to close the door and to slow the leak; it is to be late.",
        "Because your wedding is soon, we came. Did you no longer care?",
        "It's been a week; it's a good one. Me too. Too bad. Their own house.",
        "They were going home. I saw it. He had gone.",
    ],
)
def test_what_is_not_sure_is_kept(text: str) -> None:
    assert proofread(text) == text


@pytest.mark.parametrize(
    "answer",
    [
        "My parents live in a small village near the coast.",
        "My parents lives in a small village near the coast.",  # copied: no edits
        "My parent live in a small village near the coast.",
    ],
)
def test_a_correction_that_keeps_the_sentence_is_plausible(answer: str) -> None:
    assert plausible_fix("My parents lives in a small village near the coast.", answer)


@pytest.mark.parametrize(
    "answer",
    [
        "My parents are a small village near the coast.",  # "lives" dropped for another word
        "My parents lives in a small vilage near the coast.",  # not a word
        "My parents lives in a village near coast.",  # "small" dropped
        "My parents lives in a small village near the the coast of the coast.",  # too many
        "",
    ],
)
def test_an_answer_that_changes_the_sense_is_not(answer: str) -> None:
    assert not plausible_fix("My parents lives in a small village near the coast.", answer)


def test_fix_grammar_settles_on_the_proofread_text_when_the_model_wanders() -> None:
    template = get_template("fix-grammar")
    assert template.proofread
    noisy = "My parents lives near the the coast."
    assert template.settle(noisy, "My parents live near the coast.") == (
        "My parents live near the coast."
    )
    assert template.settle(noisy, "My parents near the coast of the coast.") == (
        "My parents lives near the coast."
    )
    # A template without proofreading shows the model's answer as it is.
    assert get_template("continue").settle(noisy, "anything") == "anything"


def test_proofread_must_be_true_or_false(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('prompt = "$input"\nproofread = "yes"\n', encoding="utf-8")
    with pytest.raises(TemplateError, match="proofread must be true or false"):
        _parse(path)
