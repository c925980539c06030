"""Prompt templates: TOML files with `string.Template` variables (DESIGN.md section 6).

Built-ins ship in engine/builtin_templates/; the config dir's templates/ add or override them.
GPT-2 is not instruction-tuned, so the built-ins use completion-style cues.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.errors import TemplateError
from scribe.engine.options import GenerationOptions, parse_option

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

    @property
    def builtin(self) -> bool:
        return self.source.parent == BUILTIN_DIR

    @property
    def variables(self) -> list[str]:
        return string.Template(self.prompt).get_identifiers()

    def render(self, values: dict[str, str]) -> str:
        """Fill the frame; a variable with neither a value nor a default is an error naming it."""
        merged = {**self.defaults, **values}
        missing = [name for name in self.variables if name not in merged]
        if missing:
            raise TemplateError(
                f"template '{self.name}' needs a value for ${missing[0]}; "
                f"give it with -p {missing[0]} VALUE"
            )
        return string.Template(self.prompt).substitute(merged)

    def apply_options(self, base: GenerationOptions) -> GenerationOptions:
        return base.updated(**dict(self.options), stop=self.stop or None)


def _parse(path: Path) -> Template:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise TemplateError(f"{path}: malformed TOML: {err}; fix the file") from None
    except UnicodeDecodeError:
        raise TemplateError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    name = path.stem
    prompt = data.get("prompt")
    if data.get("kind") == "chat":
        prompt = prompt or "$input"
    if not isinstance(prompt, str):
        raise TemplateError(f'{path}: needs a `prompt = "..."` string using $input')
    try:
        string.Template(prompt).substitute(
            {k: "" for k in string.Template(prompt).get_identifiers()}
        )
    except ValueError as err:
        raise TemplateError(
            f"{path}: bad placeholder in prompt ({err}); write $$ for a dollar sign"
        ) from None
    options: dict[str, Any] = {}
    for key, value in dict(data.get("options", {})).items():
        if key == "stop":
            continue
        try:
            field_name, typed = parse_option(key, value)
        except Exception as err:
            raise TemplateError(f"{path}: [options] {err}") from None
        options[field_name] = typed
    stop = data.get("options", {}).get("stop", [])
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise TemplateError(f"{path}: [options] stop must be a list of non-empty strings")
    cut = data.get("cut", "middle")
    if cut not in ("middle", "tail"):
        raise TemplateError(f'{path}: cut must be "middle" or "tail"')
    return Template(
        name=name,
        description=str(data.get("description", "")),
        prompt=prompt,
        source=path,
        defaults={str(k): str(v) for k, v in dict(data.get("defaults", {})).items()},
        options=options,
        stop=tuple(stop),
        cut=cut,
        chat={str(k): str(v) for k, v in dict(data.get("chat", {})).items()},
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
