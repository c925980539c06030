"""Loading a model for generation: a plain GPT-2 straight from its files (no transformers), a
LoRA adapter merged into such a base, anything else through transformers (and peft for
adapters). Weights load from safetensors only; never remote code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scribe.engine.errors import ModelError
from scribe.engine.runtime.model_card import ModelCard, read_card
from scribe.engine.runtime.model_files import (
    ADAPTER_CONFIG,
    DEFAULT_MODEL_DIR,
    DEFAULT_NAME,
    TOKENIZER_FILES,
    check_folder,
    locate,
    read_adapter_config,
    read_config,
    resolve,
    weight_files,
)


class LoadedModel:
    """A model ready for generation. A plain GPT-2 folder is read without transformers
    (gpt2/checkpoint.py): `weights` and `generation_tokenizer` serve generation, and `model`
    and `tokenizer`, transformers' objects, are loaded the first time something asks for them
    (fine-tuning and export need them)."""

    def __init__(
        self,
        name: str,
        path: Path,
        model: Any = None,
        tokenizer: Any = None,
        card: ModelCard | None = None,
        precision: str = "fp32",
        *,
        config: dict[str, Any] | None = None,
        weights: Any = None,
        generation_tokenizer: Any = None,
        tokenizer_path: Path | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.card = card or ModelCard()
        # The weights' precision: fp32, bf16, int8 or int4 (backend.py picks what runs them).
        self.precision = precision
        self.weights = weights  # checkpoint.Weights, or None: read from `model`
        self._model = model
        self._tokenizer = tokenizer
        self._config = config
        self._generation_tokenizer = generation_tokenizer
        self._tokenizer_path = tokenizer_path or path  # an adapter may use its base's

    @property
    def model(self) -> Any:
        """transformers' PreTrainedModel (or peft's, for an adapter), in eval mode."""
        if self._model is None:
            if (self.path / ADAPTER_CONFIG).exists():
                self._model = _load_adapter(self.path)[0].eval()
            else:
                self._model = _transformers_model(self.path)
        return self._model

    @property
    def has_transformers_model(self) -> bool:
        """Whether transformers' model is in memory (the fast path never needs it)."""
        return self._model is not None

    @property
    def tokenizer(self) -> Any:
        """transformers' fast tokenizer."""
        if self._tokenizer is None:
            self._tokenizer = _transformers_tokenizer(self._tokenizer_path)
        return self._tokenizer

    @property
    def generation_tokenizer(self) -> Any:
        """What generation encodes and decodes with: the light tokenizer read with the plain
        GPT-2's files, else `tokenizer` (the same ids and text)."""
        if self._generation_tokenizer is not None:
            return self._generation_tokenizer
        return self.tokenizer

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
        return self.generation_tokenizer.eos_token_id


def load(spec: str | None = None, precision: str = "fp32") -> LoadedModel:
    """Resolve and load a causal LM with its tokenizer, ready for generation. `precision`
    (fp32, bf16, int8, int4 or auto) picks the weights generation runs with."""
    from scribe.engine.runtime.gpt2 import checkpoint
    from scribe.engine.runtime.precision import (
        check_precision,
        choose_precision,
        preferred_precision,
    )

    check_precision(precision)
    path = locate(spec)
    name = path.name if path.parent != DEFAULT_MODEL_DIR.parent else DEFAULT_NAME
    card = read_card(path)
    precision = preferred_precision(precision, spec, path, card)
    adapter = (path / ADAPTER_CONFIG).exists()
    if adapter:
        fast = _load_merged_lora(name, path, card, precision)
        if fast is not None:
            return fast
    else:
        config = read_config(path)
        if checkpoint.is_plain(config) and checkpoint.tokenizer_is_plain(path):
            return _load_plain_gpt2(name, path, config, card, precision)
    if adapter:
        model, tok_path = _load_adapter(path)
        model.eval()
    else:
        model, tok_path = _transformers_model(path), path
    tokenizer = _transformers_tokenizer(tok_path)
    _check_vocab(tok_path, len(tokenizer), _embedding_rows(model))
    params = sum(p.numel() for p in model.parameters())
    precision = choose_precision(precision, params)
    return LoadedModel(name, path, model, tokenizer, card=card, precision=precision)


def _load_merged_lora(name: str, path: Path, card: ModelCard, precision: str) -> LoadedModel | None:
    """A LoRA adapter on a plain GPT-2, merged into the base's weights (cached) and run on the
    fast path: no peft, no transformers, no progress bars. None: load it through peft."""
    from scribe.engine.runtime import lora_merge
    from scribe.engine.runtime.gpt2 import checkpoint

    config = read_adapter_config(path)
    if not lora_merge.mergeable(config):
        return None
    base_path = _adapter_base(path, config["base_model_name_or_path"])
    base_config = read_config(base_path)
    tok_path = _adapter_tokenizer_path(path, base_path)
    if not (checkpoint.is_plain(base_config) and checkpoint.tokenizer_is_plain(tok_path)):
        return None
    try:
        merged = lora_merge.merged_weights(path, config, weight_files(base_path))
    except lora_merge.NotMergeable:
        return None
    except (KeyError, ValueError, RuntimeError) as err:
        raise ModelError(f"{path}: cannot merge the adapter into its base ({err})") from None
    card = card.with_base_model(config["base_model_name_or_path"])
    return _load_plain_gpt2(name, path, base_config, card, precision, [merged], tok_path)


def _load_plain_gpt2(
    name: str,
    path: Path,
    config: dict[str, Any],
    card: ModelCard,
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
        tokenizer = checkpoint.TextTokenizer(tokenizer_path, config)
    except Exception as err:  # noqa: BLE001 - tokenizers raises plain Exception on bad JSON
        raise ModelError(f"{tokenizer_path}: cannot load the tokenizer ({err})") from None
    _check_vocab(tokenizer_path, tokenizer.vocab_size, int(config["vocab_size"]))
    precision = choose_precision(precision, weights.parameters())
    return LoadedModel(
        name,
        path,
        card=card,
        precision=precision,
        config=config,
        weights=weights,
        generation_tokenizer=tokenizer,
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


def _transformers_model(path: Path) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    quiet_transformers()
    try:
        config = AutoConfig.from_pretrained(path)
    except (ValueError, OSError) as err:
        raise ModelError(f"{path / 'config.json'}: unreadable model config ({err})") from None
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, config=config, dtype=torch.float32, use_safetensors=True
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


def _load_adapter(path: Path) -> tuple[Any, Path]:
    """A peft adapter folder (LoRA or prefix tuning) on top of its base model; check_folder
    has seen to it that its weights are safetensors, so peft never unpickles."""
    from peft import PeftModel

    config = read_adapter_config(path)
    base_path = _adapter_base(path, config["base_model_name_or_path"])
    base = _transformers_model(base_path)
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
