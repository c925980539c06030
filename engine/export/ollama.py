"""The Ollama Modelfile written beside an exported GGUF: the file, plain completion, and the
model's own sampling settings and stop tokens."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scribe.engine.runtime import model_files, models

MODELFILE = "Modelfile"


def generation_config(path: Path) -> dict[str, Any]:
    """generation_config.json of the model, or of an adapter's base; {} when there is none."""
    folders = [path]
    if (path / model_files.ADAPTER_CONFIG).exists():
        base = model_files.read_adapter_config(path)["base_model_name_or_path"]
        folders.append(model_files.resolve(base))
    for folder in folders:
        try:
            data = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def stop_tokens(loaded: models.LoadedModel, generation: Mapping[str, Any]) -> list[str]:
    """The end-of-text token(s) generation_config names, then its stop_strings."""
    eos = generation.get("eos_token_id", loaded.eos_token_id)
    ids = eos if isinstance(eos, list) else [eos]
    stops = [
        loaded.tokenizer.convert_ids_to_tokens(i)
        for i in ids
        if isinstance(i, int) and not isinstance(i, bool)
    ]
    extra = generation.get("stop_strings") or []
    stops += [extra] if isinstance(extra, str) else [s for s in extra if isinstance(s, str)]
    return list(dict.fromkeys(s for s in stops if s))


def modelfile_text(
    gguf_name: str, generation: Mapping[str, Any], stops: list[str], n_ctx: int
) -> str:
    """An Ollama Modelfile: the GGUF beside it, plain completion (the prompt passes through
    untouched), and the sampling settings of generation_config.json, scribe's defaults for
    those it lacks."""
    from scribe.engine.runtime.options import GenerationOptions

    defaults = GenerationOptions()
    lines = [f"FROM ./{gguf_name}", "", 'TEMPLATE """{{ .Prompt }}"""', ""]
    for key in ("temperature", "top_k", "top_p"):
        value = generation.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            value = getattr(defaults, key)
        lines.append(f"PARAMETER {key} {value}")
    # Ollama's default window is larger than GPT-2's position table: keep it inside.
    lines.append(f"PARAMETER num_ctx {n_ctx}")
    lines += [f"PARAMETER stop {_quoted(stop)}" for stop in stops if '"""' not in stop]
    return "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    """A Modelfile value as Ollama's parser reads it back: quotes, no escapes (a newline is
    written as itself); triple quotes when the value holds a quote."""
    return f'"""{value}"""' if '"' in value else f'"{value}"'
