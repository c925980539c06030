"""Templates: built-ins, user overrides, variables, options and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from scribe.engine import paths
from scribe.engine.errors import TemplateError
from scribe.engine.prompting.fitting import CUT_MARK, fit_template
from scribe.engine.prompting.templates import get_template, list_templates
from scribe.engine.runtime.options import GenerationOptions
from tests.factory import gpt2_tokenizer

BUILTINS = {
    "chat",
    "continue",
    "expand",
    "summarize",
    "rewrite",
    "fix-grammar",
    "title",
    "brainstorm",
}


def test_builtins_are_listed_and_parse() -> None:
    names = {t.name for t in list_templates()}
    assert BUILTINS <= names
    assert all(t.builtin for t in list_templates())


def test_render_fills_variables_and_defaults() -> None:
    rewrite = get_template("rewrite")
    text = rewrite.render({"input": "the cat sat"})
    assert "the cat sat" in text and "clearer, more concise" in text
    assert "formal" in rewrite.render({"input": "x", "style": "formal"})


def test_summarize_uses_a_completion_cue_and_its_options() -> None:
    summarize = get_template("summarize")
    assert summarize.render({"input": "Long text."}).endswith("TL;DR:")
    opts = summarize.apply_options(GenerationOptions())
    assert opts.max_new_tokens == 80 and opts.temperature == 0.3 and "\n\n" in opts.stop


def test_missing_variable_is_named() -> None:
    user = paths.templates_dir()
    user.mkdir(parents=True)
    (user / "letter.toml").write_text('prompt = "Dear $name,\\n$input"\n', encoding="utf-8")
    with pytest.raises(TemplateError, match=r"\$name"):
        get_template("letter").render({"input": "hello"})


def test_user_file_adds_and_overrides() -> None:
    user = paths.templates_dir()
    user.mkdir(parents=True)
    (user / "summarize.toml").write_text(
        'description = "mine"\nprompt = "Summary of: $input\\n"\n', encoding="utf-8"
    )
    (user / "haiku.toml").write_text('prompt = "A haiku about $input:\\n"\n', encoding="utf-8")
    assert get_template("summarize").description == "mine"
    assert not get_template("summarize").builtin
    assert get_template("haiku").render({"input": "rain"}) == "A haiku about rain:\n"


def test_malformed_toml_names_file_and_line() -> None:
    user = paths.templates_dir()
    user.mkdir(parents=True)
    bad = user / "broken.toml"
    bad.write_text('description = "ok"\nprompt = "unterminated\n', encoding="utf-8")
    with pytest.raises(TemplateError) as err:
        get_template("broken")
    assert str(bad) in str(err.value) and "line 2" in str(err.value)


def test_unknown_template_lists_the_known_ones() -> None:
    with pytest.raises(TemplateError, match="summarize"):
        get_template("nope")


def test_bad_option_in_a_template_is_reported() -> None:
    user = paths.templates_dir()
    user.mkdir(parents=True)
    (user / "hot.toml").write_text('prompt = "$input"\n[options]\ntemperature = -1\n')
    with pytest.raises(TemplateError, match="temperature"):
        get_template("hot")


@pytest.mark.parametrize(("name", "kept"), [("summarize", "both ends"), ("continue", "tail")])
def test_fit_template_cuts_input_to_the_window(name: str, kept: str, tmp_path: Path) -> None:
    tok = gpt2_tokenizer()
    template = get_template(name)
    text = " ".join(f"word{i}" for i in range(3000))
    prompt = fit_template(
        template, {"input": text}, 1024, 200, tok.encode, lambda ids: tok.decode(ids)
    )
    assert len(tok.encode(prompt)) <= 1024 - 200
    assert "word2999" in prompt
    if kept == "both ends":
        assert "word0 " in prompt and CUT_MARK in prompt and prompt.endswith("TL;DR:")
    else:
        assert "word0 " not in prompt
