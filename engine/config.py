"""The user's config.toml (config dir): currently only `default_model`."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from scribe.engine import paths
from scribe.engine.errors import ConfigError


@dataclass(frozen=True)
class Config:
    default_model: str | None = None


def load_config() -> Config:
    path = paths.config_file()
    if not path.exists():
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: malformed config ({err}); fix or delete the file") from None
    model = data.get("default_model")
    if model is not None and not isinstance(model, str):
        raise ConfigError(f'{path}: default_model must be a string, e.g. default_model = "gpt2"')
    return Config(default_model=model)
