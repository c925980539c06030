"""A user's template TOML and config.toml with fields of the wrong type, unknown keys, or a
default_model that names nothing: one line naming the file and the field, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from scribe.engine import paths
from tests.tui.cli_run import Cli, one_error


def write_template(text: str, name: str = "bad") -> Path:
    paths.templates_dir().mkdir(parents=True, exist_ok=True)
    file = paths.templates_dir() / f"{name}.toml"
    file.write_text(text, encoding="utf-8")
    return file


GOOD_PROMPT = 'prompt = "$input"\n'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (GOOD_PROMPT + "options = 5\n", ["options must be a [table]"]),
        (GOOD_PROMPT + "stop = 3\n", ["unknown field 'stop'", "stop goes in [options]"]),
        (GOOD_PROMPT + "[options]\nstop = 3\n", ["stop must be a list"]),
        (GOOD_PROMPT + '[options]\nstop = ["ok", 3]\n', ["stop must be a list"]),
        ("prompt = []\n", ["prompt must be a string"]),
        ("prompt = 7\n", ["prompt must be a string"]),
        ('kind = "chat"\nprompt = []\n', ["prompt must be a string"]),
        ('description = "x"\n', ["needs a `prompt"]),
        (GOOD_PROMPT + "description = 5\n", ["description must be a string"]),
        (GOOD_PROMPT + 'defaults = "x"\n', ["defaults must be a [table]"]),
        (GOOD_PROMPT + "[defaults]\nstyle = [1]\n", ["[defaults] style must be a string"]),
        (GOOD_PROMPT + "chat = 3\n", ["chat must be a [table]"]),
        (GOOD_PROMPT + "kind = 5\n", ["kind must be a string"]),
        (GOOD_PROMPT + 'kind = "poem"\n', ["kind must be"]),
        (GOOD_PROMPT + "cut = []\n", ["cut must be"]),
    ],
)
def test_a_template_field_of_the_wrong_type_names_the_file_and_field(
    cli: Cli, tiny_model_dir: Path, text: str, words: list[str]
) -> None:
    file = write_template(text)
    code, out, err = cli("complete", "--model", str(tiny_model_dir), "-t", "bad")
    assert code == 1 and out == ""
    one_error(err, str(file), *words)
    # Listing and showing templates read the same file: the same line.
    for args in (["templates"], ["templates", "show", "bad"]):
        code, _, err = cli(*args)
        assert code == 1
        one_error(err, str(file), *words)


def test_a_template_with_numbers_as_defaults_still_works(cli: Cli, tiny_model_dir: Path) -> None:
    write_template('prompt = "$input ($year)"\n[defaults]\nyear = 1984\n', name="dated")
    code, _, err = cli("complete", "--model", str(tiny_model_dir), "-t", "dated")
    assert (code, err) == (0, "")


def write_config(text: str) -> Path:
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(text, encoding="utf-8")
    return paths.config_file()


@pytest.mark.parametrize("name", ["./no/such/model", "gtp2-mistyped"])
def test_a_default_model_that_does_not_resolve_names_config_toml(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("HF_HOME", str(paths.cache_dir() / "hf"))  # an empty hub cache
    config = write_config(f'default_model = "{name}"\n')
    code, out, err = cli("complete")
    assert code == 1 and out == ""
    one_error(err, str(config), f"default_model = '{name}'", "fix default_model")


def test_a_default_model_that_resolves_is_used(cli: Cli, tiny_model_dir: Path) -> None:
    write_config(f'default_model = "{tiny_model_dir}"\n')
    code, _, err = cli("complete", "--max-tokens", "2")
    assert (code, err) == (0, "")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("default_model = \n", ["malformed config"]),
        ('default_model = "x"\ndefault_model = "y"\n', ["malformed config"]),
        ("default_model = 5\n", ["default_model must be a model name"]),
        ('default_model = ""\n', ["default_model must be a model name"]),
        ("precision = 3\n", ["precision must be a table"]),
        ("[precision]\ngpt2 = 8\n", ["precision for 'gpt2' is 8"]),
        ('defualt_model = "gpt2"\n', ["unknown key 'defualt_model'", "default_model"]),
    ],
)
@pytest.mark.parametrize("command", [["complete", "--model", "MODEL"], ["models"]])
def test_a_malformed_config_toml_is_one_line_naming_it(
    cli: Cli, tiny_model_dir: Path, text: str, words: list[str], command: list[str]
) -> None:
    config = write_config(text)
    args = [str(tiny_model_dir) if arg == "MODEL" else arg for arg in command]
    code, out, err = cli(*args)
    assert code == 1 and out == ""
    one_error(err, str(config), *words)


def test_a_config_toml_that_is_not_utf8_is_one_line(cli: Cli, tiny_model_dir: Path) -> None:
    config = write_config("")
    config.write_bytes(b'default_model = "caf\xe9"\n')
    code, _, err = cli("complete", "--model", str(tiny_model_dir))
    assert code == 1
    one_error(err, str(config), "malformed config")
