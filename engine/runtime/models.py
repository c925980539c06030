"""Finding and loading models: a folder, a name under the data dir's models/, a hub id, or the
embedded default. Weights load from safetensors only; never remote code."""

from __future__ import annotations

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


class LoadedModel:
    """A model ready for generation. A plain GPT-2 folder is read without transformers
    (gpt2/checkpoint.py): `weights` and `text` serve generation, and `model` and
    `tokenizer`, transformers' objects, are loaded the first time something asks for them."""

    def __init__(
        self,
        name: str,
        path: Path,
        model: Any = None,
        tokenizer: Any = None,
        card: dict[str, Any] | None = None,
        precision: str = "fp32",
        *,
        config: dict[str, Any] | None = None,
        weights: Any = None,
        text: Any = None,
        tokenizer_path: Path | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.card: dict[str, Any] = card or {}
        # Weights the fast GPT-2 path runs: fp32, bf16, int8 or int4 (gpt2/quantize.py).
        self.precision = precision
        self.weights = weights  # checkpoint.Weights, or None: read from `model`
        self._model = model
        self._tokenizer = tokenizer
        self._config = config
        self._text = text
        self._tokenizer_path = tokenizer_path or path  # an adapter may use its base's

    @property
    def model(self) -> Any:
        """transformers' PreTrainedModel (or peft's, for an adapter), in eval mode."""
        if self._model is None:
            if (self.path / ADAPTER_CONFIG).exists():
                self._model = _load_adapter(self.path, "float32")[0].eval()
            else:
                self._model = _transformers_model(self.path, "float32")
        return self._model

    @property
    def tokenizer(self) -> Any:
        """transformers' fast tokenizer."""
        if self._tokenizer is None:
            self._tokenizer = _transformers_tokenizer(self._tokenizer_path)
        return self._tokenizer

    @property
    def text(self) -> Any:
        """What generation encodes and decodes with (same ids and text as `tokenizer`)."""
        return self._text if self._text is not None else self.tokenizer

    @property
    def config(self) -> dict[str, Any]:
        if self._config is None:
            self._config = self.model.config.to_dict()
        return self._config

    @property
    def n_positions(self) -> int:
        value = self.config.get("n_positions") or self.config.get("max_position_embeddings")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelError(
                f"{self.path / 'config.json'}: no n_positions or max_position_embeddings, so "
                "the context length is unknown; restore the config saved with the model"
            )
        return value

    @property
    def eos_token_id(self) -> int | None:
        return self.text.eos_token_id


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
    if path.exists():
        raise ModelError(
            f"{path}: is a file, not a model folder; pass the folder that holds config.json"
        )
    if not HUB_ID.match(spec) or spec.count("/") > 1:
        raise ModelError(
            f"model '{spec}' not found: not a folder, not a name under {paths.models_dir()}, "
            "and not a hub id; see `scribe models`"
        )
    return _from_hub(spec)


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
            f"model '{repo_id}' is not in the Hugging Face cache and could not be downloaded "
            f"({type(err).__name__}); connect once to fetch it, or pass a local folder with --model"
        ) from None


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
    config = _read_config(path)
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


def read_card(path: Path) -> dict[str, Any]:
    card = path / CARD_FILE
    if not card.exists():
        return {}
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ModelError(f"{card}: not valid JSON; fix it or delete it") from None
    return data if isinstance(data, dict) else {}


def load(spec: str | None = None, dtype: str = "float32", precision: str = "fp32") -> LoadedModel:
    """Resolve and load a causal LM with its tokenizer, ready for generation. `precision`
    (fp32, bf16, int8, int4 or auto) picks the weights generation runs with."""
    from scribe.engine.runtime.gpt2 import checkpoint
    from scribe.engine.runtime.precision import (
        check_precision,
        choose_precision,
        preferred_precision,
    )

    check_precision(precision)
    path = resolve(spec)
    check_folder(path)
    name = path.name if path.parent != DEFAULT_MODEL_DIR.parent else "default"
    card = read_card(path)
    precision = preferred_precision(precision, spec, path, card)
    adapter = (path / ADAPTER_CONFIG).exists()
    if adapter and dtype == "float32":
        fast = _load_merged_lora(name, path, card, precision)
        if fast is not None:
            return fast
    if not adapter and dtype == "float32":
        config = _read_config(path)
        if checkpoint.is_plain(config) and checkpoint.tokenizer_is_plain(path):
            return _load_plain_gpt2(name, path, config, card, precision)
    if adapter:
        model, tok_path = _load_adapter(path, dtype)
        model.eval()
    else:
        model, tok_path = _transformers_model(path, dtype), path
    tokenizer = _transformers_tokenizer(tok_path)
    _check_vocab(tok_path, len(tokenizer), _embedding_rows(model))
    params = sum(p.numel() for p in model.parameters())
    precision = choose_precision(precision, params)
    return LoadedModel(name, path, model, tokenizer, card=card, precision=precision)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ModelError(f"{path / 'config.json'}: unreadable model config ({err})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path / 'config.json'}: unreadable model config (not a JSON object)")
    return data


def _load_merged_lora(
    name: str, path: Path, card: dict[str, Any], precision: str
) -> LoadedModel | None:
    """A LoRA adapter on a plain GPT-2, merged into the base's weights (cached) and run on the
    fast path: no peft, no transformers, no progress bars. None: load it through peft."""
    from scribe.engine.runtime import lora_merge
    from scribe.engine.runtime.gpt2 import checkpoint

    config = read_adapter_config(path)
    if not lora_merge.mergeable(config):
        return None
    base_path = _adapter_base(path, config["base_model_name_or_path"])
    base_config = _read_config(base_path)
    tok_path = _adapter_tokenizer_path(path, base_path)
    if not (checkpoint.is_plain(base_config) and checkpoint.tokenizer_is_plain(tok_path)):
        return None
    try:
        merged = lora_merge.merged_weights(path, config, weight_files(base_path))
    except (KeyError, ValueError, RuntimeError) as err:
        raise ModelError(f"{path}: cannot merge the adapter into its base ({err})") from None
    card = {"base_model": config["base_model_name_or_path"], **card}
    return _load_plain_gpt2(name, path, base_config, card, precision, [merged], tok_path)


def _load_plain_gpt2(
    name: str,
    path: Path,
    config: dict[str, Any],
    card: dict[str, Any],
    precision: str,
    files: list[Path] | None = None,
    tokenizer_path: Path | None = None,
) -> LoadedModel:
    """A plain GPT-2 from its files: safetensors and tokenizers, no transformers import."""
    from safetensors import SafetensorError

    from scribe.engine.runtime.gpt2 import checkpoint
    from scribe.engine.runtime.precision import choose_precision

    tokenizer_path = tokenizer_path or path
    try:
        weights = checkpoint.Weights(files or weight_files(path))
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        raise ModelError(f"{path}: cannot load the weights ({err})") from None
    try:
        text = checkpoint.TextTokenizer(tokenizer_path, config)
    except Exception as err:  # noqa: BLE001 - tokenizers raises plain Exception on bad JSON
        raise ModelError(f"{tokenizer_path}: cannot load the tokenizer ({err})") from None
    _check_vocab(tokenizer_path, text.vocab_size, int(config["vocab_size"]))
    precision = choose_precision(precision, weights.parameters())
    return LoadedModel(
        name,
        path,
        card=card,
        precision=precision,
        config=config,
        weights=weights,
        text=text,
        tokenizer_path=tokenizer_path,
    )


def _embedding_rows(model: Any) -> int:
    """Rows of the input embedding table (scribe's PrefixModel keeps its base as `.base`)."""
    get = getattr(model, "get_input_embeddings", None) or model.base.get_input_embeddings
    return int(get().num_embeddings)


def _check_vocab(path: Path, tokens: int, embeddings: int) -> None:
    """A token id past the embedding table would fail deep inside the forward pass."""
    if tokens > embeddings:
        raise ModelError(
            f"{path}: the tokenizer has {tokens} tokens but the model only {embeddings} "
            "embeddings; the tokenizer belongs to another model: save the matching one beside it"
        )


def _transformers_model(path: Path, dtype: str) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    quiet_transformers()
    try:
        config = AutoConfig.from_pretrained(path)
    except (ValueError, OSError) as err:
        raise ModelError(f"{path / 'config.json'}: unreadable model config ({err})") from None
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, config=config, dtype=getattr(torch, dtype), use_safetensors=True
        )
    except ValueError as err:
        if "Unrecognized configuration" in str(err):
            raise ModelError(
                f"{path / 'config.json'}: model type '{config.model_type}' is not a causal "
                "language model; scribe needs a text-generation model such as GPT-2"
            ) from None
        raise ModelError(f"{path}: cannot load the weights ({err})") from None
    except (OSError, RuntimeError) as err:  # RuntimeError: a size mismatch
        raise ModelError(f"{path}: cannot load the weights ({err})") from None
    return model.eval()


def _transformers_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: cannot load the tokenizer ({err})") from None


def quiet_transformers() -> None:
    """transformers draws progress bars and warnings on stderr; scribe's doors own the terminal."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _load_adapter(path: Path, dtype: str) -> tuple[Any, Path]:
    """A peft adapter folder (LoRA or prefix tuning) on top of its base model; check_folder
    has seen to it that its weights are safetensors, so peft never unpickles."""
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelError(
            f"{path}: is a peft adapter; install scribe[finetune] to load it"
        ) from None
    config = read_adapter_config(path)
    base_path = _adapter_base(path, config["base_model_name_or_path"])
    base = _transformers_model(base_path, dtype)
    if config.get("peft_type") == "PREFIX_TUNING":
        # peft's prefix is ignored by transformers 5's GPT-2; scribe's own wrapper applies it.
        from scribe.engine.runtime.prefix_adapter import load_prefix_model

        try:
            model = load_prefix_model(path, base)
        except (ValueError, KeyError, OSError) as err:
            raise ModelError(f"{path}: cannot load the prefix adapter ({err})") from None
    else:
        try:
            model = PeftModel.from_pretrained(base, path)
        except (ValueError, KeyError, TypeError, RuntimeError, OSError) as err:
            raise ModelError(f"{path}: cannot load the adapter ({err})") from None
    return model, _adapter_tokenizer_path(path, base_path)


def _adapter_tokenizer_path(path: Path, base_path: Path) -> Path:
    """The adapter's own tokenizer when it saved one, else its base's."""
    return path if any((path / name).exists() for name in TOKENIZER_FILES) else base_path


def _adapter_base(path: Path, base_spec: str) -> Path:
    """The base model folder an adapter names, checked like any model folder."""
    try:
        base_path = resolve(base_spec)
    except ModelError as err:
        raise ModelError(
            f"{path / ADAPTER_CONFIG}: base model {base_spec!r} not found ({err}); fix "
            "base_model_name_or_path"
        ) from None
    if (base_path / ADAPTER_CONFIG).exists():
        raise ModelError(
            f"{path / ADAPTER_CONFIG}: base model {base_spec!r} is itself an adapter; point "
            "base_model_name_or_path at a full model"
        )
    check_folder(base_path)
    return base_path
