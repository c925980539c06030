"""bench/loops.py's loop detector and prompt reader, loaded from the bench folder by path (the
bench scripts are not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def loops() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_loops", BENCH / "loops.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


PROSE = (
    "Thank you for the birthday card and the scarf. It is exactly the shade of green I would "
    "have picked myself, and it has already been out twice this week because the mornings have "
    "turned cold. Work is busy but fine. We moved into a new office in March, and I finally have "
    "a desk next to a window, so I can watch the pigeons fight over the bins behind the bakery."
)

CODE = """    with open(path) as f:
        data = json.load(f)
    if not data:
        return None
    users = []
    for item in data:
        if "name" not in item:
            continue
        if "email" not in item:
            continue
        users.append(item)
    else:
        pass
    return users
"""


def test_plain_prose_and_code_do_not_loop(loops: ModuleType) -> None:
    assert loops.loop_reason(PROSE) is None
    assert loops.loop_reason(CODE, code=True) is None
    assert not loops.is_looping("")
    assert not loops.is_looping("Fine.")


def test_a_phrase_said_twice_is_not_a_loop(loops: ModuleType) -> None:
    text = (
        "I think the best part of the trip was the food. " + PROSE + " The best part of the trip."
    )
    assert loops.loop_reason(text) is None


def test_a_four_word_run_three_times_loops(loops: ModuleType) -> None:
    text = "Fix a bug where the bug where the bug is a bug where the bug where the bug is fixed."
    reason = loops.loop_reason(text)
    assert reason is not None and reason.startswith("n-gram")
    # Case and punctuation do not hide a repeat.
    assert loops.is_looping("The new plan is. the new plan is, THE NEW PLAN IS! and so on")


def test_repeated_list_items_loop_by_line(loops: ModuleType) -> None:
    text = "Ideas:\n- Bar: Nacl Rawer\n- Due: Dayontal\n- Bar: Nacl Rawer\n- Bar: Nacl Rawer\n"
    reason = loops.loop_reason(text)
    assert reason is not None and reason.startswith("line")


def test_code_repeats_short_phrases_but_not_lines(loops: ModuleType) -> None:
    # The same 4 words three times over is ordinary code; the n-gram rule is for prose only.
    code = "self.a = a\nself.b = b\nself.c = c\nif x is None:\n    y = 1\nif z is None:\n"
    code += "    y = 2\nif w is None:\n    y = 3\n"
    assert loops.loop_reason(code, code=True) is None
    lines = "total = total + item\n" * 3
    reason = loops.loop_reason("for item in items:\n" + lines, code=True)
    assert reason is not None and reason.startswith("line")


def test_short_lines_may_repeat_in_code(loops: ModuleType) -> None:
    code = "    else:\n        pass\n" * 3 + "    return x\n    return x\n    return x\n"
    assert loops.loop_reason(code, code=True) is None  # each repeated line is under 10 chars


def test_a_tail_that_repeats_an_earlier_span_loops(loops: ModuleType) -> None:
    # Once, then again: no 4-gram three times, but the last 30% copies earlier text.
    sentence = "The garden was quiet after the storm and the light came back slowly over the hill. "
    reason = loops.loop_reason("Dear Sam, it rained all night. " + sentence + sentence)
    assert reason is not None and reason.startswith("tail")
    # Whitespace differences do not hide it.
    code = "def f(x):\n    return x + 1\n\n\ndef g(y):\n    return y * 2\n"
    reason = loops.loop_reason(code + code.replace("\n\n\n", "\n\n"), code=True)
    assert reason is not None and reason.startswith("tail")


def test_a_stutter_inside_one_line_loops(loops: ModuleType) -> None:
    for text in ("import os.path.path.path.path.path", "for line in line in line in line in f:"):
        reason = loops.loop_reason(text, code=True)
        assert reason is not None and reason.startswith("stutter"), text
    # Rulers, indentation and numbers are not stutters.
    for text in ("# " + "-" * 40, " " * 24 + "x = 1", "[0, 0, 0, 0, 0, 0]", "print('=' * 40)"):
        assert loops.loop_reason(text, code=True) is None, text


def test_prompts_file_reads_and_kinds(loops: ModuleType, tmp_path: Path) -> None:
    prompts = loops.read_prompts(loops.PROMPTS)
    kinds = [loops.prompt_kind(p) for p in prompts]
    assert (kinds.count("prose"), kinds.count("chat"), kinds.count("code")) == (6, 3, 6)
    assert all("\\n" not in p for p in prompts)
    file = tmp_path / "p.txt"
    file.write_text("def f(x):\\n    \nWrite a poem.\nOnce upon a time\\tthere\\\\was\n\n")
    assert loops.read_prompts(file) == [
        "def f(x):\n    ",
        "Write a poem.",
        "Once upon a time\tthere\\was",
    ]
    assert [loops.prompt_kind(p) for p in loops.read_prompts(file)] == ["code", "chat", "prose"]
