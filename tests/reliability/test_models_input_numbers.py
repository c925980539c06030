"""Every number a user types reaches scribe checked: NaN, infinities, seeds past torch's 64 bits,
absurd token counts and misspelt -p keys are one error line naming the flag, never a traceback
from deep inside the sampler."""

from __future__ import annotations

from pathlib import Path

import pytest

from scribe.engine import paths
from scribe.engine.errors import InputError
from scribe.engine.runtime.options import SEED_MAX, GenerationOptions, parse_option
from tests.tui.cli_run import Cli, one_error


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--temperature", "nan", "finite"),
        ("--temperature", "inf", "finite"),
        ("--temperature", "-inf", "finite"),
        ("--temperature", "warm", "needs a number"),
        ("--top-p", "nan", "finite"),
        ("--top-p", "1.5", "(0, 1]"),
        ("--repetition-penalty", "nan", "finite"),
        ("--seed", "99999999999999999999999", str(SEED_MAX)),
        ("--seed", "-1", str(SEED_MAX)),
        ("--seed", "1.5", "whole number"),
        ("--max-tokens", "99999999999999999999", "from 1 to"),
        ("--max-tokens", "-5", "from 1 to"),
        ("--max-tokens", "0", "from 1 to"),
        ("--top-k", "2.5", "whole number"),
    ],
)
@pytest.mark.parametrize("command", ["complete", "chat"])
def test_a_bad_number_is_one_line_naming_the_flag(
    cli: Cli, tiny_model_dir: Path, command: str, flag: str, value: str, words: str
) -> None:
    code, out, err = cli(command, "--model", str(tiny_model_dir), f"{flag}={value}")
    assert code == 2 and out == ""
    one_error(err, flag, words, repr(value))


def test_the_largest_seed_torch_takes_generates(cli: Cli, tiny_model_dir: Path) -> None:
    """The range ends where torch's does: 2**64 - 1 is a valid seed, not an error."""
    args = ["complete", "--model", str(tiny_model_dir), "--max-tokens", "3"]
    first = cli(*args, "--seed", str(SEED_MAX))
    assert first[0] == 0 and first[2] == ""
    assert cli(*args, "--seed", str(SEED_MAX)) == first  # the same seed, the same text


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("stlye", ["'stlye'", "its variables: style"]),
        ("temperature", ["'temperature'", "use --temperature"]),
        ("max_tokens", ["'max_tokens'", "use --max-tokens"]),
        ("input", ["$input", "stdin"]),
    ],
)
def test_an_unknown_param_key_names_the_templates_variables(
    cli: Cli, tiny_model_dir: Path, key: str, words: list[str]
) -> None:
    code, out, err = cli(
        "complete", "--model", str(tiny_model_dir), "-t", "rewrite", "-p", key, "nan"
    )
    assert code == 2 and out == ""
    one_error(err, f"-p {key}", *words)


def test_a_known_param_key_still_works(cli: Cli, tiny_model_dir: Path) -> None:
    args = ["complete", "--model", str(tiny_model_dir), "-t", "rewrite", "--max-tokens", "2"]
    code, _, err = cli(*args, "-p", "style", "formal")
    assert code == 0 and err == ""


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("temperature = nan", ["temperature", "finite"]),
        ("top_p = inf", ["top_p", "finite"]),
        ("max_tokens = true", ["max_tokens", "needs a number"]),
        ("max_tokens = 1e30", ["max_tokens", "from 1 to"]),
        ("top_k = 1.5", ["top_k", "whole number"]),
        ('temperature = "hot"', ["temperature", "needs a number"]),
        ("seed = [1]", ["seed", "needs a number"]),
        ("warmth = 2", ["unknown option 'warmth'", "accepted: max_tokens"]),
    ],
)
def test_a_bad_number_in_a_template_names_the_file_and_option(
    cli: Cli, tiny_model_dir: Path, line: str, words: list[str]
) -> None:
    paths.templates_dir().mkdir(parents=True)
    template = paths.templates_dir() / "mine.toml"
    template.write_text(f'prompt = "$input"\n\n[options]\n{line}\n', encoding="utf-8")
    code, out, err = cli("complete", "--model", str(tiny_model_dir), "-t", "mine")
    assert code == 1 and out == ""
    one_error(err, str(template), "[options]", *words)


@pytest.mark.parametrize(
    ("name", "value"),
    [("temperature", "nan"), ("top_p", "inf"), ("seed", str(2**64)), ("max_tokens", True)],
)
def test_set_option_values_are_checked_the_same_way(name: str, value: object) -> None:
    """Chat's /set and saved settings go through parse_option too."""
    with pytest.raises(InputError, match=f"option {name} "):
        parse_option(name, value)


def test_options_built_in_code_refuse_non_finite_numbers() -> None:
    with pytest.raises(InputError, match="temperature must be a finite number"):
        GenerationOptions(temperature=float("nan"))
    with pytest.raises(InputError, match="seed must be from 0"):
        GenerationOptions(seed=2**64)
    assert GenerationOptions(seed=SEED_MAX, temperature=0.0).seed == SEED_MAX
