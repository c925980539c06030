"""What models are available locally, read from their files without loading any weights."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.models import DEFAULT_MODEL_DIR, read_card


@dataclass(frozen=True)
class ModelInfo:
    name: str
    where: str  # "embedded", "local" (data dir), or "hub cache"
    path: Path
    parameters: int
    size_bytes: int
    context: int | None
    card: dict[str, Any]


def _safetensors_parameters(file: Path) -> int:
    try:
        with file.open("rb") as handle:
            header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    except (OSError, ValueError):
        return 0
    return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")


def describe(name: str, where: str, path: Path) -> ModelInfo | None:
    config_file = path / "config.json"
    if not config_file.exists():
        return None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    weights = list(path.glob("*.safetensors"))
    context = config.get("n_positions") or config.get("max_position_embeddings")
    return ModelInfo(
        name=name,
        where=where,
        path=path,
        parameters=sum(_safetensors_parameters(f) for f in weights),
        size_bytes=sum(f.stat().st_size for f in path.iterdir() if f.is_file()),
        context=context,
        card=read_card(path) if (path / "scribe.json").exists() else {},
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
        candidates.append(("default", "embedded", DEFAULT_MODEL_DIR))
    models = paths.models_dir()
    if models.is_dir():
        candidates += [(p.name, "local", p) for p in sorted(models.iterdir()) if p.is_dir()]
    candidates += [(name, "hub cache", path) for name, path in _hub_cached()]
    infos = [describe(name, where, path) for name, where, path in candidates]
    return [info for info in infos if info is not None]
