"""Stop-sequence filtering, incremental detokenizing and input checking, without a model."""

from __future__ import annotations

import pytest

from scribe.engine.errors import InputError
from scribe.engine.runtime.detokenize import IncrementalDecoder
from scribe.engine.runtime.stops import StopFilter
from scribe.engine.text_input import decode_text
from tests.factory import gpt2_tokenizer


def run_filter(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool]:
    flt = StopFilter(stops)
    out = ""
    for piece in pieces:
        out += flt.feed(piece)
        if flt.stopped:
            return out, True
    return out + flt.flush(), False


@pytest.mark.parametrize(
    ("pieces", "expected", "stopped"),
    [
        (["Hello", " Wor", "ld\nUs", "er: hi"], "Hello World\n", True),
        (["Hello\nU", "s", "e"], "Hello\nUse", False),  # a near-miss is released at the end
        (["\nUser:"], "\n", True),
        (["abc"], "abc", False),
    ],
)
def test_stop_filter(pieces: list[str], expected: str, stopped: bool) -> None:
    assert run_filter(("User:",), pieces) == (expected, stopped)


def test_stop_filter_holds_back_a_possible_start() -> None:
    flt = StopFilter(("###",))
    assert flt.feed("text #") == "text "
    assert flt.feed("#") == ""
    assert flt.feed("x") == "##x"


def test_incremental_decoder_keeps_characters_whole() -> None:
    tok = gpt2_tokenizer()
    text = " naïve café 🙂 日本語 done"
    ids = tok.encode(text)
    decoder = IncrementalDecoder(lambda i: tok.decode(i), context=tok.encode("Hello"))
    deltas = [decoder.push(i) for i in ids] + [decoder.flush()]
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)
    assert any(d == "" for d in deltas)  # the emoji's bytes span tokens: something was held


def test_decode_text_accepts_utf8_and_strips_a_bom() -> None:
    assert decode_text("\ufeffDear reader".encode(), "stdin") == "Dear reader"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", ["empty"]),
        (b"  \n\t ", ["empty"]),
        (b"text\x00more", ["binary", "offset 4"]),
        (b"caf\xe9 au lait", ["not valid UTF-8", "0xe9", "offset 3"]),
    ],
)
def test_decode_text_rejects_bad_input_with_a_reason(data: bytes, words: list[str]) -> None:
    with pytest.raises(InputError) as err:
        decode_text(data, "stdin")
    for word in words:
        assert word in str(err.value)
    assert "\n" not in str(err.value)
