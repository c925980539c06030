"""Finding a model's folder and checking its files before anything loads them: a path, a name
under the data dir's models/, a hub id, or the embedded default; safetensors headers read whole,
adapter configs (the model card is model_card.py's)."""

from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.config import load_config
from scribe.engine.errors import ModelError

CARD_FILE = "scribe.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
DEFAULT_MODEL_DIR = Path(__file__).parents[1] / "default_model"
# What `scribe models` calls the embedded model, and what --model accepts for it.
DEFAULT_NAME = "default"


def default_model_spec() -> str | None:
    """config.toml's default_model, else the embedded model when it is installed."""
    configured = load_config().default_model
    if configured:
        return configured
    if (DEFAULT_MODEL_DIR / "config.json").exists():
        return str(DEFAULT_MODEL_DIR)
    return None


def resolve(spec: str | None) -> Path:
    """The model folder for --model SPEC (downloading into the transformers cache if needed)."""
    if spec is None:
        return _resolve_default()
    path = paths.user_path(spec, "model")  # an unknown ~user is one line, not a traceback
    if path.is_dir():
        return path
    named = paths.models_dir() / spec
    if named.is_dir():
        return named
    if spec == DEFAULT_NAME:  # no folder of that name: the embedded model `scribe models` lists
        if (DEFAULT_MODEL_DIR / "config.json").exists():
            return DEFAULT_MODEL_DIR
        raise ModelError(
            "model 'default': the embedded model is not installed; pass --model DIR|NAME|HUB_ID"
        )
    if path.exists():
        raise ModelError(
            f"{path}: is a file, not a model folder; pass the folder that holds config.json"
        )
    if not HUB_ID.match(spec) or spec.count("/") > 1:
        raise ModelError(
            f"model '{spec}' not found: not a folder, not a name under {paths.models_dir()}, "
            f"and not a hub id; {installed_hint(spec)}"
        )
    return _from_hub(spec)


def installed_hint(spec: str) -> str:
    """What to try instead of a model name that is not installed: the closest installed name
    (a typo) and `scribe models`, which lists them all."""
    names = [DEFAULT_NAME] if (DEFAULT_MODEL_DIR / "config.json").exists() else []
    try:
        names += sorted(p.name for p in paths.models_dir().iterdir() if p.is_dir())
    except OSError:  # no models folder yet
        pass
    close = difflib.get_close_matches(spec.rstrip("/").rsplit("/", 1)[-1], names, n=1, cutoff=0.6)
    mean = f"did you mean '{close[0]}'? " if close else ""
    return f"{mean}`scribe models` lists the installed models"


def _resolve_default() -> Path:
    """config.toml's default_model (an error that names config.toml when it is mistyped), else
    the embedded model."""
    configured = load_config().default_model
    if configured:
        try:
            return resolve(configured)
        except ModelError as err:
            raise ModelError(
                f"{paths.config_file()}: default_model = {configured!r} does not resolve "
                f"({err}); fix default_model there, or pass --model"
            ) from None
    spec = default_model_spec()
    if spec is None:
        raise ModelError(
            "no model given: pass --model DIR|NAME|HUB_ID, or set default_model in "
            f"{paths.config_file()}"
        )
    return Path(spec)


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:  # not cached yet: try the network
        pass
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as err:
        raise ModelError(
            f"model '{repo_id}' is not in the Hugging Face cache nor installed, and could not be "
            f"downloaded ({type(err).__name__}); connect once to fetch it; "
            f"{installed_hint(repo_id)}"
        ) from None


def locate(spec: str | None) -> Path:
    """The folder for --model SPEC, checked: what `models.load` reads, and what a server
    checks before it starts so a bad --model fails at once with one line."""
    path = resolve(spec)
    check_folder(path)
    return path


def weight_files(path: Path) -> list[Path]:
    """A model folder's own weights (model.safetensors, or its shards); not scribe's derived
    scribe-int8.safetensors caches beside them (gpt2/quantize.py rebuilds a damaged one)."""
    return sorted(path.glob("model*.safetensors"))


def check_folder(path: Path) -> None:
    """Fail with one line naming the file and the fix, before transformers sees the folder:
    every safetensors header is read whole, and a GPT-2's config is checked against it."""
    if (path / ADAPTER_CONFIG).exists():
        _check_adapter(path)
        return
    if not (path / "config.json").exists() and (path / "run" / "settings.json").exists():
        raise ModelError(
            f"{path}: an unfinished `scribe finetune` run, not a model yet; finish it with "
            f"`scribe finetune --out {path} --resume`"
        )
    if not (path / "config.json").exists():
        raise ModelError(
            f"{path}: no config.json, so this is not a model folder; point --model at a folder "
            "written by save_pretrained or `scribe finetune`"
        )
    if not any((path / name).exists() for name in TOKENIZER_FILES):
        raise ModelError(
            f"{path}: no tokenizer files (tokenizer.json, or vocab.json + merges.txt); "
            "save the tokenizer beside the model with tokenizer.save_pretrained"
        )
    files = weight_files(path)
    if not files:
        raise ModelError(
            f"{path}: no model.safetensors{_pickle_hint(path)}; re-save the model with "
            "save_pretrained(..., safe_serialization=True)"
        )
    config = read_config(path)
    shapes: dict[str, list[int]] = {}
    for file in files:
        shapes.update(_checked_shapes(file))
    if config.get("model_type") == "gpt2":
        _check_gpt2(path, config, shapes)


def _pickle_hint(path: Path) -> str:
    pickled = sorted(p.name for p in [*path.glob("*.bin"), *path.glob("*.pt")])
    return f" ({', '.join(pickled)} is pickle, which scribe never loads)" if pickled else ""


def _check_gpt2(path: Path, config: dict[str, Any], shapes: dict[str, list[int]]) -> None:
    """A GPT-2 config that would break the forward pass, or that belongs to other weights."""
    from scribe.engine.runtime.gpt2 import checkpoint

    problem = checkpoint.config_problem(config)
    if problem:
        raise ModelError(
            f"{path / 'config.json'}: {problem}; restore the config.json saved with the weights"
        )
    problem = checkpoint.tensors_problem(config, shapes)
    if problem:
        raise ModelError(
            f"{path}: the weights do not match config.json ({problem}); restore the "
            "config.json saved with these weights"
        )


def _check_adapter(path: Path) -> None:
    """A peft adapter: its config names a base, and its weights are safetensors (peft would
    fall back to unpickling adapter_model.bin, which scribe never does)."""
    read_adapter_config(path)
    weights = path / ADAPTER_WEIGHTS
    if not weights.exists():
        raise ModelError(
            f"{path}: no {ADAPTER_WEIGHTS}{_pickle_hint(path)}; re-save the adapter as "
            "safetensors with save_pretrained(..., safe_serialization=True)"
        )
    _checked_shapes(weights)


def read_adapter_config(path: Path) -> dict[str, Any]:
    """adapter_config.json, with the base model it needs as a non-empty string."""
    file = path / ADAPTER_CONFIG
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ModelError(
            f"{file}: unreadable adapter config ({err}); save the adapter again"
        ) from None
    base = data.get("base_model_name_or_path") if isinstance(data, dict) else None
    if not isinstance(base, str) or not base.strip():
        raise ModelError(
            f"{file}: base_model_name_or_path must name the base model (a folder, a name "
            "under models/, or a hub id); set it, or save the adapter again"
        )
    return data


def _checked_shapes(file: Path) -> dict[str, list[int]]:
    """The tensors' shapes in a safetensors file, or a ModelError naming it."""
    try:
        shapes = safetensors_shapes(file)
    except (OSError, ValueError) as err:
        raise ModelError(
            f"{file}: corrupt or truncated weights ({err}); copy or download the model again"
        ) from None
    if not shapes:
        raise ModelError(f"{file}: holds no tensors; copy or download the model again")
    return shapes


# Bytes per element of safetensors' dtypes; an unlisted (newer) dtype skips the size check.
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2,
    "BF16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip
MAX_HEADER = 100_000_000  # safetensors' own limit


def safetensors_shapes(file: Path) -> dict[str, list[int]]:
    """Each tensor's shape, from a header checked whole as the safetensors library would: a
    JSON object whose tensors have a dtype, a shape, and byte ranges that exactly fill the
    file. A ValueError says what is wrong (a torn download, a list for a header...)."""
    size = file.stat().st_size
    with file.open("rb") as handle:
        prefix = handle.read(8)
        header_len = int.from_bytes(prefix, "little")
        if len(prefix) < 8 or not 0 < header_len <= min(size - 8, MAX_HEADER):
            raise ValueError(f"a header of {header_len} bytes does not fit a {size}-byte file")
        raw = handle.read(header_len)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ValueError(f"the header is a JSON {type(header).__name__}, not an object")
    data_size = size - 8 - header_len
    shapes, end = {}, 0
    for name, entry in header.items():
        if name != "__metadata__":
            shapes[name], stop = _tensor_entry(name, entry, data_size)
            end = max(end, stop)
    if end != data_size:
        raise ValueError(f"{data_size - end} bytes beyond the last tensor")
    return shapes


def _tensor_entry(name: str, entry: Any, data_size: int) -> tuple[list[int], int]:
    """(shape, end offset) of one header entry, or a ValueError naming the tensor."""

    def whole(values: Any) -> bool:
        return isinstance(values, list) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values
        )

    if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str):
        raise ValueError(f"tensor {name}: no dtype")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not whole(shape):
        raise ValueError(f"tensor {name}: bad shape {shape!r}")
    if not whole(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
        raise ValueError(f"tensor {name}: bad data_offsets {offsets!r}")
    if offsets[1] > data_size:
        raise ValueError(f"tensor {name} ends past the end of the file (truncated)")
    width = DTYPE_BYTES.get(entry["dtype"])
    if width is not None and offsets[1] - offsets[0] != math.prod(shape) * width:
        raise ValueError(f"tensor {name}: its bytes do not match {entry['dtype']} {shape}")
    return shape, offsets[1]


def read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ModelError(f"{path / 'config.json'}: unreadable model config ({err})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path / 'config.json'}: unreadable model config (not a JSON object)")
    return data
