"""Where scribe keeps its files: platformdirs, or everything under $SCRIBE_HOME when it is set."""

from __future__ import annotations

import os
from pathlib import Path

APP = "scribe"


def _home() -> Path | None:
    value = os.environ.get("SCRIBE_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    home = _home()
    if home:
        return home / "config"
    from platformdirs import user_config_path

    return user_config_path(APP)


def data_dir() -> Path:
    home = _home()
    if home:
        return home / "data"
    from platformdirs import user_data_path

    return user_data_path(APP)


def cache_dir() -> Path:
    home = _home()
    if home:
        return home / "cache"
    from platformdirs import user_cache_path

    return user_cache_path(APP)


def models_dir() -> Path:
    return data_dir() / "models"


def templates_dir() -> Path:
    return config_dir() / "templates"


def config_file() -> Path:
    return config_dir() / "config.toml"
