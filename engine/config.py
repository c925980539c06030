"""The user's config.toml (config dir): `default_model`, a `[precision]` table that picks the
weights each model runs with when no --precision is given, by the name it is called by, and an
`[options]` table of generation options that every door starts from (a template's own options,
flags and /set still win):

    default_model = "gpt2"

    [precision]
    gpt2 = "int4"
    my-style = "fp32"

    [options]
    dry_multiplier = 1.2   # a stronger loop guard
    min_p = 0.1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.errors import ConfigError, InputError
from scribe.engine.toml_file import read_toml, reject_unknown

# The weights a model may run with; runtime/precision.py decides which one "auto" means.
PRECISIONS = ("auto", "fp32", "bf16", "int8", "int4")


@dataclass(frozen=True)
class Config:
    default_model: str | None = None
    precision: dict[str, str] = field(default_factory=dict)  # model name or path -> precision
    options: dict[str, Any] = field(default_factory=dict)  # generation option -> as written


KEYS = ("default_model", "precision", "options")


# The last config read, by (path, mtime, size): a command reads config.toml once however many
# models it resolves, and still sees an edit made while it runs (a long chat).
_cached: tuple[tuple[str, int, int], Config] | None = None


def load_config() -> Config:
    global _cached
    path = paths.config_file()
    try:
        info = path.stat()
    except OSError:
        return Config()  # no config.toml (or an unreadable folder: the defaults apply)
    key = (str(path), info.st_mtime_ns, info.st_size)
    if _cached is None or _cached[0] != key:
        _cached = (key, _parse(path))
    return _cached[1]


def _parse(path: Path) -> Config:
    data = read_toml(path, ConfigError, "config")
    reject_unknown(
        path, data, KEYS, ConfigError, f"key '{{key}}'; config.toml knows: {', '.join(KEYS)}"
    )
    model = data.get("default_model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ConfigError(
            f'{path}: default_model must be a model name, e.g. default_model = "gpt2"'
        )
    if model is not None and model.startswith("~"):
        try:
            paths.user_path(model, "default_model")
        except InputError as err:  # the same line, but naming this file
            raise ConfigError(f"{path}: {err}") from None
    precision = data.get("precision", {})
    if not isinstance(precision, dict):
        raise ConfigError(f'{path}: precision must be a table, e.g. [precision] then gpt2 = "int8"')
    for name, value in precision.items():
        if value not in PRECISIONS:
            raise ConfigError(
                f"{path}: precision for '{name}' is {value!r}; choose one of: "
                + ", ".join(PRECISIONS)
            )
    return Config(default_model=model, precision=dict(precision), options=_options(path, data))


def _options(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The [options] table as written; runtime/options.py checks each value when it applies them
    (configured_options), naming this file."""
    table = data.get("options", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: options must be a table, e.g. [options] then min_p = 0.1")
    return dict(table)
