"""The three ways to train a model (full, LoRA, prefix), and saving each as a model folder.

Full training updates every weight, LoRA adds peft adapters, and prefix tuning learns virtual
key/values (runtime/prefix_adapter.py); each is written as a folder scribe and transformers load.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from scribe.engine.errors import ModelError
from scribe.engine.runtime.models import quiet_transformers

LORA_TARGETS = ["c_attn", "c_proj", "c_fc"]  # GPT-2's Conv1D layers: attention, projections, MLP
DROPOUT_KEYS = ("resid_pdrop", "embd_pdrop", "attn_pdrop")  # GPT2Config's dropout rates


def set_dropout(model: torch.nn.Module, p: float) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    for key in DROPOUT_KEYS:
        if hasattr(model.config, key):
            setattr(model.config, key, p)


def prepare(model: Any, method: str, settings: Any, init_ids: list[int]) -> Any:
    """The module to train: the model itself, a peft LoRA model, or a prefix-tuning wrapper."""
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        missing = [
            t for t in LORA_TARGETS if not any(n.endswith(t) for n, _ in model.named_modules())
        ]
        if missing:
            raise ModelError(
                f"--method lora targets GPT-2's {', '.join(LORA_TARGETS)} layers; this "
                f"{model.config.model_type} model has no {missing[0]}; use --method full"
            )
        config = LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=LORA_TARGETS,
            fan_in_fan_out=True,
            task_type="CAUSAL_LM",
        )
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, config)
    from scribe.engine.runtime.prefix_adapter import PrefixModel

    return PrefixModel.create(model, settings.prefix_tokens, init_ids)


def save_output(
    trained: Any,
    tokenizer: Any,
    method: str,
    merge: bool,
    base_path: Path | None,
    folder: Path,
    dtype: str,
) -> dict[str, Any]:
    """Write the model files into `folder` (empty); returns facts for the card."""
    quiet_transformers()  # save_pretrained's shard bar would write to the terminal
    torch_dtype = getattr(torch, dtype)
    if method == "full":
        trained.to(torch_dtype).save_pretrained(folder, safe_serialization=True)
        kind = "model"
    elif method == "lora" and merge:
        merged = trained.merge_and_unload()
        merged.to(torch_dtype).save_pretrained(folder, safe_serialization=True)
        kind = "model (LoRA merged)"
    elif method == "lora":
        assert base_path is not None
        trained.peft_config["default"].base_model_name_or_path = str(base_path.resolve())
        trained.save_pretrained(folder, safe_serialization=True)
        kind = "LoRA adapter"
    else:
        assert base_path is not None
        trained.save_adapter(folder, base_path.resolve())
        kind = "prefix-tuning adapter"
    tokenizer.save_pretrained(folder)
    return {"format": kind}


def install(staging: Path, out: Path) -> None:
    """Move finished files from `staging` into `out`, config files last: a folder only looks
    like a model (config.json / adapter_config.json) once everything else is in place."""
    files = sorted(
        staging.iterdir(), key=lambda p: p.name in ("config.json", "adapter_config.json")
    )
    for file in files:
        target = out / file.name
        if target.exists():
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
        file.replace(target)
    shutil.rmtree(staging, ignore_errors=True)
