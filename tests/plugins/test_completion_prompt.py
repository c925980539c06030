"""The editor's prompt window (stable start, bounded size; engine/prompting/editor_window.py)
and the rules that shape a suggestion."""

from __future__ import annotations

import pytest

from scribe.engine.prompting.editor_window import PromptWindow
from scribe.engine.runtime.generation import CHARS_PER_TOKEN_BOUND
from scribe.engine.runtime.healing import split_trailing_blanks
from scribe.plugins.servers.completion_prompt import StopRule, is_prose, trim_suffix_overlap
from tests import factory

SENTENCE = "She opened the door and looked out at the sea; the boats were coming home. "


def encode(text: str) -> list[int]:
    return list(factory.tiny_tokenizer().encode(text, add_special_tokens=False))


def test_short_document_prompt_is_all_text_before_the_cursor() -> None:
    window = PromptWindow(encode, budget_tokens=100)
    text = "Dear diary,\nToday I went to the market. After that"
    cursor = text.index(" After")
    assert window.prompt(text, cursor) == text[:cursor]
    assert window.anchor_offset == 0


def test_long_document_prompt_fits_the_budget_and_starts_on_a_word() -> None:
    window = PromptWindow(encode, budget_tokens=120)
    text = SENTENCE * 40
    prompt = window.prompt(text, len(text))
    assert text.endswith(prompt)
    assert len(encode(prompt)) <= 120
    assert len(encode(prompt)) >= 120 * 0.5  # re-anchoring keeps most of the budget
    start = len(text) - len(prompt)
    assert text[start - 1].isspace()  # a word (or line) start, never mid-word


def test_prompt_start_stays_put_while_typing_until_the_budget_is_full() -> None:
    window = PromptWindow(encode, budget_tokens=120)
    text = SENTENCE * 40
    first = window.prompt(text, len(text))
    anchor = window.anchor_offset
    starts = set()
    for word in "and then the rain began to fall on the quiet town".split():
        text += word + " "
        prompt = window.prompt(text, len(text))
        starts.add(len(text) - len(prompt))
        assert len(encode(prompt)) <= 120
    assert starts == {anchor}  # the same start each keystroke: the prefix cache hits
    assert text[anchor:].startswith(first)
    for _ in range(20):  # keep typing: the window must eventually jump forward
        text += "more words here "
        window.prompt(text, len(text))
    assert window.anchor_offset is not None and window.anchor_offset > anchor


def test_an_edit_near_the_end_keeps_the_start() -> None:
    window = PromptWindow(encode, budget_tokens=120)
    text = SENTENCE * 40 + "The last words are here"
    window.prompt(text, len(text))
    anchor = window.anchor_offset
    edited = text.replace("are here", "were here")
    prompt = window.prompt(edited, len(edited))
    assert window.anchor_offset == anchor
    assert edited.endswith(prompt)


def test_an_edit_above_the_start_moves_the_anchor_to_the_same_text() -> None:
    window = PromptWindow(encode, budget_tokens=120)
    text = "".join(f"Line {i}: " + SENTENCE + "\n" for i in range(30))
    before = window.prompt(text, len(text))
    inserted = "A new first line.\n" + text  # every offset shifts by 18
    after = window.prompt(inserted, len(inserted))
    assert after == before  # found the same start again, so the same tokens


def test_cursor_in_the_middle_gives_text_before_it() -> None:
    window = PromptWindow(encode, budget_tokens=50)
    text = "First paragraph here.\n\nSecond one is"
    cursor = text.index("Second")
    assert window.prompt(text, cursor) == "First paragraph here.\n\n"


def test_five_megabyte_document_gives_a_bounded_prompt() -> None:
    window = PromptWindow(encode, budget_tokens=200)
    text = (SENTENCE * (5_000_000 // len(SENTENCE) + 1))[:5_000_000]
    prompt = window.prompt(text, len(text))
    assert len(encode(prompt)) <= 200
    assert len(prompt) <= 200 * CHARS_PER_TOKEN_BOUND


def test_trailing_blanks_are_split_off() -> None:
    assert split_trailing_blanks("The cat ") == ("The cat", " ")
    assert split_trailing_blanks("The cat\n") == ("The cat", "\n")
    assert split_trailing_blanks("def f():\n    ") == ("def f():", "\n    ")
    assert split_trailing_blanks("x\t ") == ("x", "\t ")


@pytest.mark.parametrize(
    ("completion", "suffix", "expected"),
    [
        ("print(x)", ")", "print(x"),  # the closing bracket is already there
        ("foo, bar and baz", " and baz.", "foo, bar"),  # the model re-typed the rest of the line
        ("the", "e cat", "the"),  # one letter is too weak a match to cut
        ("hello world", "", "hello world"),
        ("value", "\nnext line", "value"),  # only the cursor's line counts
        ('say "hi"', '"', 'say "hi'),
    ],
)
def test_suffix_overlap_is_trimmed(completion: str, suffix: str, expected: str) -> None:
    assert trim_suffix_overlap(completion, suffix) == expected


def feed_all(rule: StopRule, pieces: list[str]) -> str:
    for piece in pieces:
        if rule.feed(piece):
            break
    return rule.finish()


def test_prose_stops_at_a_sentence_end() -> None:
    rule = StopRule(prose=True)
    assert feed_all(rule, [" the boats", " were home", ".", " Then", " they"]) == (
        " the boats were home."
    )
    assert rule.done


def test_prose_does_not_stop_at_a_decimal_point() -> None:
    rule = StopRule(prose=True)
    assert feed_all(rule, [" pi is 3", ".14 and", " more"]) == " pi is 3.14 and more"
    assert not rule.done


def test_prose_stops_at_a_paragraph_end_and_keeps_quotes() -> None:
    assert feed_all(StopRule(prose=True), [" a line\n", "\nNext para"]) == " a line"
    assert feed_all(StopRule(prose=True), [' "Go!" she', " said"]) == ' "Go!"'


def test_code_stops_at_the_end_of_its_first_line() -> None:
    assert feed_all(StopRule(prose=False), ["x = 1", "\ny = 2"]) == "x = 1"
    # At the end of a line the suggestion may be the next line, indentation included.
    assert feed_all(StopRule(prose=False), ["\n    return", " x\n", "def"]) == "\n    return x"


def test_blank_suggestion_is_empty() -> None:
    assert feed_all(StopRule(prose=False), ["   "]) == ""


def test_prose_languages() -> None:
    assert is_prose("markdown") and is_prose("text") and is_prose(None)
    assert not is_prose("python")


def test_fim_format_needs_single_token_markers_from_the_card() -> None:
    from scribe.plugins.servers.completion_prompt import FimFormat

    card = {"fim": {"prefix": "<P>", "suffix": "<S>", "middle": "<M>"}}
    one = FimFormat.from_card(card, lambda text: [0] if text.startswith("<") else [0, 1])
    assert one is not None and one.prompt("a", "b") == "<P>a<S>b<M>"
    assert FimFormat.from_card(card, lambda text: [0, 1]) is None  # markers not single tokens
    assert FimFormat.from_card({}, lambda text: [0]) is None
    assert FimFormat.from_card({"fim": "yes"}, lambda text: [0]) is None


def test_fim_suffix_keeps_whole_lines_within_the_budget() -> None:
    from scribe.engine.prompting.editor_window import fim_suffix

    def encode(text: str) -> list[int]:
        return list(range(len(text.split())))

    suffix = "rest of line\nsecond line here\nthird line is long enough\nfourth"
    assert fim_suffix(suffix, encode, 7) == "rest of line\nsecond line here"
    assert fim_suffix("one two three four five", encode, 2) == "one two"
