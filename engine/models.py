"""Finding and loading models: a folder, a name under the data dir's models/, a hub id, or the
embedded default (DESIGN.md section 3). Weights load from safetensors only; never remote code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.config import PRECISIONS, load_config
from scribe.engine.errors import ModelError

CARD_FILE = "scribe.json"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"


class LoadedModel:
    """A model ready for generation. A plain GPT-2 folder is read without transformers
    (engine/gpt2_checkpoint.py): `weights` and `text` serve generation, and `model` and
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
    ) -> None:
        self.name = name
        self.path = path
        self.card: dict[str, Any] = card or {}
        # Weights the fast GPT-2 path runs: fp32, bf16, int8 or int4 (engine/quantize.py).
        self.precision = precision
        self.weights = weights  # gpt2_checkpoint.Weights, or None: read from `model`
        self._model = model
        self._tokenizer = tokenizer
        self._config = config
        self._text = text

    @property
    def model(self) -> Any:
        """transformers' PreTrainedModel, in eval mode."""
        if self._model is None:
            self._model = _transformers_model(self.path, "float32")
        return self._model

    @property
    def tokenizer(self) -> Any:
        """transformers' fast tokenizer."""
        if self._tokenizer is None:
            self._tokenizer = _transformers_tokenizer(self.path)
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
        return int(self.config.get("n_positions") or self.config["max_position_embeddings"])

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
        spec = default_model_spec()
        if spec is None:
            raise ModelError(
                "no model given: pass --model DIR|NAME|HUB_ID, or set default_model in "
                f"{paths.config_file()}"
            )
    path = Path(spec).expanduser()
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


def check_folder(path: Path) -> None:
    """Fail with one line naming the file and the fix, before transformers sees the folder."""
    if (path / "adapter_config.json").exists():
        return  # a peft adapter; its base model is checked when it loads
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
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        hint = f" ({', '.join(pickled)} is pickle, which scribe never loads)" if pickled else ""
        raise ModelError(
            f"{path}: no model.safetensors{hint}; re-save the model with "
            "save_pretrained(..., safe_serialization=True)"
        )
    for file in weights:
        _check_safetensors(file)


def _check_safetensors(file: Path) -> None:
    """Reads the header and checks every tensor lies inside the file (catches truncation)."""
    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
            if header_len <= 0 or 8 + header_len > size:
                raise ValueError("header larger than the file")
            header = json.loads(handle.read(header_len))
        end = max(
            (v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0
        )
        if 8 + header_len + end > size:
            raise ValueError(f"{size} bytes, expected {8 + header_len + end}")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise ModelError(
            f"{file}: corrupt or truncated weights ({err}); copy or download the model again"
        ) from None


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
    from scribe.engine import gpt2_checkpoint
    from scribe.engine.quantize import check_precision, choose_precision

    check_precision(precision)
    path = resolve(spec)
    check_folder(path)
    name = path.name if path.parent != DEFAULT_MODEL_DIR.parent else "default"
    card = read_card(path)
    precision = preferred_precision(precision, spec, path, card)
    adapter = (path / "adapter_config.json").exists()
    if not adapter and dtype == "float32":
        config = _read_config(path)
        if gpt2_checkpoint.is_plain(config) and gpt2_checkpoint.tokenizer_is_plain(path):
            return _load_plain_gpt2(name, path, config, card, precision)
    import torch

    if adapter:
        model, tok_path = _load_adapter(path, getattr(torch, dtype))
        model.eval()
    else:
        model, tok_path = _transformers_model(path, dtype), path
    tokenizer = _transformers_tokenizer(tok_path)
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


def _load_plain_gpt2(
    name: str, path: Path, config: dict[str, Any], card: dict[str, Any], precision: str
) -> LoadedModel:
    """A plain GPT-2 from its files: safetensors and tokenizers, no transformers import."""
    from scribe.engine import gpt2_checkpoint
    from scribe.engine.quantize import choose_precision

    try:
        weights = gpt2_checkpoint.Weights(sorted(path.glob("model*.safetensors")))
    except (OSError, ValueError, RuntimeError) as err:
        raise ModelError(f"{path}: cannot load the weights ({err})") from None
    try:
        text = gpt2_checkpoint.TextTokenizer(path, config)
    except Exception as err:  # noqa: BLE001 - tokenizers raises plain Exception on bad JSON
        raise ModelError(f"{path}: cannot load the tokenizer ({err})") from None
    precision = choose_precision(precision, weights.parameters())
    return LoadedModel(
        name, path, card=card, precision=precision, config=config, weights=weights, text=text
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
    except OSError as err:
        raise ModelError(f"{path}: cannot load the weights ({err})") from None
    return model.eval()


def _transformers_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: cannot load the tokenizer ({err})") from None


def preferred_precision(precision: str, spec: str | None, path: Path, card: dict[str, Any]) -> str:
    """An explicit precision wins; for "auto", config.toml's [precision] entry for the model
    (by the name or path it was given as, or its folder's name), then its card's own."""
    if precision != "auto":
        return precision
    table = load_config().precision
    for key in (spec, str(path), path.name):
        if key is not None and key in table:
            return table[key]
    chosen = card.get("precision", "auto")
    if chosen not in PRECISIONS:
        raise ModelError(
            f"{path / CARD_FILE}: precision {chosen!r} is not one of {', '.join(PRECISIONS)}; "
            "fix the card or pass --precision"
        )
    return chosen


def quiet_transformers() -> None:
    """transformers draws progress bars and warnings on stderr; scribe's doors own the terminal."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _load_adapter(path: Path, torch_dtype: Any) -> tuple[Any, Path]:
    """A peft adapter folder (LoRA or prefix tuning) on top of its base model."""
    try:
        from peft import PeftConfig, PeftModel
    except ImportError:
        raise ModelError(
            f"{path}: is a peft adapter; install scribe[finetune] to load it"
        ) from None
    from transformers import AutoModelForCausalLM

    base_spec = PeftConfig.from_pretrained(path).base_model_name_or_path
    base_path = resolve(base_spec)
    check_folder(base_path)
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch_dtype, use_safetensors=True)
    if PeftConfig.from_pretrained(path).peft_type == "PREFIX_TUNING":
        # peft's prefix is ignored by transformers 5's GPT-2; scribe's own wrapper applies it.
        from scribe.engine.finetune.prefix import load_prefix_model

        try:
            model = load_prefix_model(path, base)
        except (ValueError, KeyError, OSError) as err:
            raise ModelError(f"{path}: cannot load the prefix adapter ({err})") from None
    else:
        model = PeftModel.from_pretrained(base, path)
    has_tokenizer = any((path / name).exists() for name in TOKENIZER_FILES)
    return model, path if has_tokenizer else base_path
