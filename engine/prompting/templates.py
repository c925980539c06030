"""Prompt templates: TOML files with `string.Template` variables.

Built-ins ship in engine/builtin_templates/; the config dir's templates/ add or override them.
GPT-2 is not instruction-tuned, so the built-ins use completion-style cues.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.errors import InputError, TemplateError
from scribe.engine.prompting.extractive import CHECKS
from scribe.engine.prompting.framing import fill_framed
from scribe.engine.prompting.proofread import plausible_fix, proofread
from scribe.engine.runtime.options import ALIASES, SETTABLE, GenerationOptions, parse_option
from scribe.engine.runtime.text_tokens import Framed
from scribe.engine.toml_file import read_toml, reject_unknown

BUILTIN_DIR = Path(__file__).parent / "builtin_templates"


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    prompt: str  # the frame; $input is the user's text
    source: Path
    defaults: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # generation option overrides
    stop: tuple[str, ...] = ()
    cut: str = "middle"  # how an overlong $input is shortened: "middle" or "tail"
    chat: dict[str, str] = field(default_factory=dict)  # chat turn formats, for kind = "chat"
    proofread: bool = False  # fix $input's sure mechanical errors first (proofread.py)
    # "summary" or "title": the answer must read as one for $input, else one is made from
    # $input's own words (extractive.py); "" checks nothing.
    check: str = ""

    @property
    def builtin(self) -> bool:
        return self.source.parent == BUILTIN_DIR

    @property
    def variables(self) -> list[str]:
        return string.Template(self.prompt).get_identifiers()

    def render(self, values: dict[str, str]) -> Framed:
        """Fill the frame (its own text as frame, the values as data: prompting/framing.py); a
        variable with neither a value nor a default is an error naming it."""
        merged = {**self.defaults, **values}
        if self.proofread and "input" in merged:
            merged["input"] = proofread(merged["input"])
        missing = [name for name in self.variables if name not in merged]
        if missing:
            raise TemplateError(
                f"template '{self.name}' needs a value for ${missing[0]}; "
                f"give it with -p {missing[0]} VALUE"
            )
        return Framed(fill_framed(self.prompt, merged))

    def check_values(self, values: dict[str, str]) -> None:
        """Refuse a -p KEY the template does not use: a misspelt variable would otherwise be
        silently ignored and its default used."""
        known = [name for name in self.variables if name != "input"]
        for key in values:
            if key == "input":
                raise InputError(f"-p input: template '{self.name}' fills $input with stdin")
            if key not in known:
                raise InputError(
                    f"-p {key}: template '{self.name}' has no variable '{key}'; its variables: "
                    f"{', '.join(known) or 'none'}{_option_hint(key)}"
                )

    def check_input(self) -> None:
        """Refuse a template whose prompt has no $input: the text given to it (stdin) would be
        silently left out of the prompt."""
        if "input" not in self.variables:
            raise TemplateError(
                f"template '{self.name}' has no $input, so the text you give it would be "
                f"ignored; add $input to its prompt in {self.source}"
            )

    @property
    def checked(self) -> bool:
        """Whether the model's answer is checked whole (`settle`) before it is shown."""
        return self.proofread or bool(self.check)

    def settle(self, text: str, answer: str) -> str:
        """The answer a checked template gives for `text`. Proofreading: the model's, when it is
        a plausible correction of the proofread text, else the proofread text itself. A check
        ("summary", "title"): the model's, when it reads as one, else one made from the text."""
        if self.proofread:
            checked, answer = proofread(text), proofread(answer)  # the sure fixes hold anyway
            return answer if plausible_fix(checked, answer) else checked
        if self.check:
            plausible, extract = CHECKS[self.check]
            return answer.strip() if plausible(text, answer) else extract(text)
        return answer

    def apply_options(self, base: GenerationOptions) -> GenerationOptions:
        return base.updated(**dict(self.options), stop=self.stop or None)


def _option_hint(key: str) -> str:
    """A pointer to the flag when -p was given a generation option's name."""
    option = ALIASES.get(key, key)
    if option not in SETTABLE:
        return ""
    flag = "--max-tokens" if option == "max_new_tokens" else "--" + option.replace("_", "-")
    return f" ({key} is a generation option: use {flag})"


# A template file's top-level fields; anything else is a typo (stop belongs in [options]).
FIELDS = (
    "description",
    "prompt",
    "kind",
    "cut",
    "proofread",
    "check",
    "defaults",
    "options",
    "chat",
)
KINDS = ("completion", "chat")


def _field(path: Path, data: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    """data[key] when it has the TOML type `kind` (a string, or a table for dict), else a
    TemplateError naming the file and the field."""
    value = data.get(key, default)
    if not isinstance(value, kind):
        what = {dict: "a [table]", bool: f"true or false, e.g. {key} = true"}.get(
            kind, f'a string, e.g. {key} = "..."'
        )
        raise TemplateError(f"{path}: {key} must be {what}, not {value!r}; fix the file")
    return value


def _text_table(path: Path, data: dict[str, Any], key: str) -> dict[str, str]:
    """A table of text values ([defaults], [chat]); numbers are written as text."""
    table = _field(path, data, key, dict, {})
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TemplateError(f"{path}: [{key}] {name} must be a string, not {value!r}")
    return {str(k): str(v) for k, v in table.items()}


def _options(path: Path, data: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The [options] table as (generation options by field name, stop sequences)."""
    table = _field(path, data, "options", dict, {})
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key == "stop":
            continue
        if key == "lstrip":
            if not isinstance(value, bool):
                raise TemplateError(f"{path}: [options] lstrip must be true or false")
            options["lstrip"] = value
            continue
        try:
            field_name, typed = parse_option(key, value)
        except InputError as err:
            raise TemplateError(f"{path}: [options] {err}") from None
        options[field_name] = typed
    stop = table.get("stop", [])
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise TemplateError(f"{path}: [options] stop must be a list of non-empty strings")
    return options, tuple(stop)


def _check_prompt(path: Path, prompt: str) -> None:
    try:
        string.Template(prompt).substitute(
            {k: "" for k in string.Template(prompt).get_identifiers()}
        )
    except ValueError as err:
        raise TemplateError(
            f"{path}: bad placeholder in prompt ({err}); write $$ for a dollar sign"
        ) from None


def _check_field(path: Path, data: dict[str, Any]) -> str:
    check = _field(path, data, "check", str, "")
    if check and check not in CHECKS:
        names = " or ".join(f'"{name}"' for name in CHECKS)
        raise TemplateError(f"{path}: check must be {names}, not {check!r}; fix the file")
    return check


def _parse(path: Path) -> Template:
    data = read_toml(path, TemplateError, "template")
    reject_unknown(
        path,
        data,
        FIELDS,
        TemplateError,
        f"field '{{key}}'; a template has {', '.join(FIELDS)} (stop goes in [options])",
    )
    kind = _field(path, data, "kind", str, "completion")
    if kind not in KINDS:
        raise TemplateError(f'{path}: kind must be "chat" or "completion", not {kind!r}')
    if "prompt" not in data and kind != "chat":
        raise TemplateError(f'{path}: needs a `prompt = "..."` string using $input')
    prompt = _field(path, data, "prompt", str, "$input")
    _check_prompt(path, prompt)
    options, stop = _options(path, data)
    cut = data.get("cut", "middle")
    if cut not in ("middle", "tail"):
        raise TemplateError(f'{path}: cut must be "middle" or "tail"')
    return Template(
        name=path.stem,
        description=_field(path, data, "description", str, ""),
        prompt=prompt,
        source=path,
        defaults=_text_table(path, data, "defaults"),
        options=options,
        stop=stop,
        cut=cut,
        chat=_text_table(path, data, "chat"),
        proofread=_field(path, data, "proofread", bool, False),
        check=_check_field(path, data),
    )


def _files() -> dict[str, Path]:
    found = {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.toml"))}
    user = paths.templates_dir()
    if user.is_dir():
        found.update({p.stem: p for p in sorted(user.glob("*.toml"))})
    return found


def list_templates() -> list[Template]:
    return [_parse(path) for path in _files().values()]


def get_template(name: str) -> Template:
    files = _files()
    if name not in files:
        known = ", ".join(sorted(files))
        raise TemplateError(f"no template named '{name}'; available: {known}")
    return _parse(files[name])
