"""Finding and loading models: a folder, a name under the data dir's models/, a hub id, or the
embedded default (DESIGN.md section 3). Weights load from safetensors only; never remote code."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.config import PRECISIONS, load_config
from scribe.engine.errors import ModelError

CARD_FILE = "scribe.json"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"


@dataclass
class LoadedModel:
    name: str
    path: Path
    model: Any  # a transformers PreTrainedModel in eval mode
    tokenizer: Any  # a transformers fast tokenizer
    card: dict[str, Any] = field(default_factory=dict)
    # Weights the fast GPT-2 path runs: fp32, bf16, int8 or int4 (engine/quantize.py).
    precision: str = "fp32"

    @property
    def n_positions(self) -> int:
        config = self.model.config
        return int(getattr(config, "n_positions", None) or config.max_position_embeddings)

    @property
    def eos_token_id(self) -> int | None:
        return self.tokenizer.eos_token_id


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
    from scribe.engine.quantize import check_precision, choose_precision

    check_precision(precision)
    path = resolve(spec)
    check_folder(path)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    torch_dtype = getattr(torch, dtype)
    if (path / "adapter_config.json").exists():
        model, tok_path = _load_adapter(path, torch_dtype)
    else:
        try:
            config = AutoConfig.from_pretrained(path)
        except (ValueError, OSError) as err:
            raise ModelError(f"{path / 'config.json'}: unreadable model config ({err})") from None
        try:
            model = AutoModelForCausalLM.from_pretrained(
                path, config=config, dtype=torch_dtype, use_safetensors=True
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
        tok_path = path
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_path)
    except (OSError, ValueError) as err:
        raise ModelError(f"{tok_path}: cannot load the tokenizer ({err})") from None
    model.eval()
    name = path.name if path.parent != DEFAULT_MODEL_DIR.parent else "default"
    card = read_card(path)
    precision = choose_precision(preferred_precision(precision, spec, path, card), model)
    return LoadedModel(name, path, model, tokenizer, card=card, precision=precision)


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
