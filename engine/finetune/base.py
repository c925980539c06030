"""The model training starts from: a base loaded with its tokenizer, or a new one to build."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from scribe.engine.errors import InputError
from scribe.engine.files.atomic import atomic_path
from scribe.engine.finetune import fim
from scribe.engine.finetune.context import RunContext
from scribe.engine.finetune.events import Stage
from scribe.engine.finetune.scratch import Blueprint, blueprint_for
from scribe.engine.finetune.settings import FinetuneSettings
from scribe.engine.finetune.splits import Split

SCRATCH_DROPOUT = 0.1


class StartModel(NamedTuple):
    module: Any  # the transformers model, before any LoRA or prefix wrapper
    path: Path | None  # the base's folder, which an adapter names; None from scratch
    name: str  # what the card calls the base
    shape: dict[str, Any]  # its size as the card records it, measured before any wrapper


@dataclass(frozen=True)
class Base:
    """The loaded base (or the blueprint of a new model) and the tokenizer the run uses."""

    settings: FinetuneSettings
    tokenizer: Any
    loaded: Any = None  # the runtime's LoadedModel; None with --from-scratch

    @property
    def blueprint(self) -> Blueprint:
        s = self.settings
        return blueprint_for(s.from_scratch or "", s.vocab_size, s.n_positions)

    @property
    def n_positions(self) -> int:
        return self.loaded.n_positions if self.loaded is not None else self.blueprint.n_positions

    @property
    def parameters(self) -> int:
        if self.loaded is not None:
            return sum(p.numel() for p in self.loaded.model.parameters())
        return self.blueprint.parameters

    def start_model(self) -> StartModel:
        """The model to train; a new one from scratch is built afresh on each call."""
        s = self.settings
        if s.from_scratch:
            from scribe.engine.finetune.scratch import new_model

            dropout = SCRATCH_DROPOUT if s.dropout is None else s.dropout
            module = new_model(self.blueprint, self.tokenizer, dropout, s.seed)
            return StartModel(module, None, f"scratch:{s.from_scratch}", model_shape(module))
        from scribe.engine.finetune.methods import set_dropout

        module = self.loaded.model
        if s.dropout is not None:
            set_dropout(module, s.dropout)
        name = s.model or self.loaded.name
        return StartModel(module, self.loaded.path, name, model_shape(module))


def load_base(ctx: RunContext, split: Split) -> Base:
    """Load --model (adding the FIM tokens when --fim needs them), or train a tokenizer on the
    training split for --from-scratch (kept in the run folder, so a resume reuses it)."""
    s = ctx.settings
    if not s.from_scratch:
        from scribe.engine.runtime.models import load

        ctx.emit(Stage(f"loading {s.model or 'the default model'}"))
        loaded = load(s.model)
        if s.fim and not fim.has_tokens(loaded.tokenizer):
            if s.method != "full":
                raise InputError(
                    f"--fim adds three tokens to {s.model or 'the base'}, and a {s.method} "
                    "adapter cannot carry new token rows; use --method full, or a base that "
                    "has the FIM tokens (scribe's default model does)"
                )
            fim.add_tokens(loaded.tokenizer, loaded.model)
            ctx.emit(Stage("added the fill-in-the-middle tokens to the tokenizer"))
        return Base(s, loaded.tokenizer, loaded)
    from scribe.engine.finetune.scratch import train_tokenizer

    blueprint = blueprint_for(s.from_scratch, s.vocab_size, s.n_positions)
    specials = fim.TOKENS if s.fim else ()

    def trained() -> Any:
        ctx.emit(Stage(f"training a {blueprint.vocab_size}-token BPE tokenizer"))
        return train_tokenizer(split.train, blueprint.vocab_size, blueprint.n_positions, specials)

    if not ctx.writes:
        return Base(s, trained())
    folder = ctx.run_dir / "tokenizer"

    def make() -> None:
        if not (folder / "tokenizer.json").exists():
            with atomic_path(folder) as staging:
                trained().save_pretrained(staging)

    ctx.on_main(make)
    from transformers import AutoTokenizer

    return Base(s, AutoTokenizer.from_pretrained(folder))


def model_shape(model: Any) -> dict[str, Any]:
    """The model's size as the card records it."""
    config = model.config
    keys = ("model_type", "n_layer", "n_head", "n_embd", "n_positions", "vocab_size")
    shape = {k: getattr(config, k) for k in keys if hasattr(config, k)}
    shape["parameters"] = sum(p.numel() for p in model.parameters())
    return shape
