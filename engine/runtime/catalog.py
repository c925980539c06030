"""What models are available locally, read from their files without loading any weights.

A folder that would not load is still listed, with the reason (the line `--model` would print):
one broken folder under models/ must not hide the others, nor stop `scribe models`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.errors import ModelError
from scribe.engine.runtime.model_card import ModelCard, read_card
from scribe.engine.runtime.model_files import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    DEFAULT_MODEL_DIR,
    DEFAULT_NAME,
    check_folder,
    safetensors_shapes,
    weight_files,
)

# What makes a folder under models/ look like a model (or a broken one) rather than clutter.
MARKERS = ("config.json", ADAPTER_CONFIG, "run/settings.json", "*.safetensors", "*.bin")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    where: str  # "embedded", "local" (data dir), or "hub cache"
    path: Path
    parameters: int
    size_bytes: int
    context: int | None
    card: ModelCard = field(default_factory=ModelCard)
    base: str = ""  # the model a finetune or an adapter was made from
    adapter: bool = False  # a peft adapter folder (adapter_config.json, no config.json)
    problem: str | None = None  # why it would not load, as `--model` would say it

    @property
    def broken(self) -> bool:
        return self.problem is not None


def _parameters(files: list[Path]) -> int:
    total = 0
    for file in files:
        try:
            total += sum(math.prod(shape) for shape in safetensors_shapes(file).values())
        except (OSError, ValueError):
            pass  # counted as 0; check_folder reports the file
    return total


def _json_object(file: Path) -> dict[str, Any]:
    """A JSON file's object, or {} when it is missing or broken (check_folder names it)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _context(config: dict[str, Any]) -> int | None:
    value = config.get("n_positions") or config.get("max_position_embeddings")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _size(path: Path) -> int:
    try:
        return sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    except OSError:
        return 0


def _local_base_config(base: str) -> dict[str, Any]:
    """The config.json of an adapter's base when it is a folder here (never the hub: listing
    stays offline and fast)."""
    try:
        local = Path(base).expanduser()
    except RuntimeError:  # "~someone/..." with no such user: not a folder here
        local = Path(base)
    for folder in (local, paths.models_dir() / base):
        if (folder / "config.json").is_file():
            return _json_object(folder / "config.json")
    return {}


def looks_like_model(path: Path) -> bool:
    return any(any(path.glob(marker)) for marker in MARKERS)


def describe(name: str, where: str, path: Path) -> ModelInfo | None:
    """What `scribe models` shows for one folder; None for a folder that is no model at all."""
    if not looks_like_model(path):
        return None
    problem = None
    try:
        check_folder(path)
    except ModelError as err:
        problem = str(err)
    try:
        card = read_card(path)
    except ModelError as err:
        card, problem = ModelCard(), problem or str(err)
    adapter = (path / ADAPTER_CONFIG).exists() and not (path / "config.json").exists()
    base = card.base_model
    if adapter:
        base = base or _json_object(path / ADAPTER_CONFIG).get("base_model_name_or_path")
        config = _local_base_config(str(base)) if base else {}
        files = [path / ADAPTER_WEIGHTS]
    else:
        config = _json_object(path / "config.json")
        files = weight_files(path)
    return ModelInfo(
        name=name,
        where=where,
        path=path,
        parameters=_parameters([f for f in files if f.exists()]),
        size_bytes=_size(path),
        context=_context(config),
        card=card,
        base=str(base) if isinstance(base, str) else "",
        adapter=adapter,
        problem=problem,
    )


def _hub_cached() -> list[tuple[str, Path]]:
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache yet, or an unreadable one: nothing to list
        return []
    found = []
    for repo in info.repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda r: r.last_modified)
        found.append((repo.repo_id, Path(newest.snapshot_path)))
    return found


def available_models() -> list[ModelInfo]:
    candidates: list[tuple[str, str, Path]] = []
    if (DEFAULT_MODEL_DIR / "config.json").exists():
        candidates.append((DEFAULT_NAME, "embedded", DEFAULT_MODEL_DIR))
    models = paths.models_dir()
    if models.is_dir():
        candidates += [
            (p.name, "local", p)
            for p in sorted(models.iterdir())
            if p.is_dir() and not p.name.startswith(".")
        ]  # .NAME.replaced: a backup
    candidates += [(name, "hub cache", path) for name, path in _hub_cached()]
    infos = [describe(name, where, path) for name, where, path in candidates]
    return [info for info in infos if info is not None]
