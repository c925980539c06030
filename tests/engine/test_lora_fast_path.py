"""A LoRA adapter runs on the fast GPT-2 path: merged into its base once (cached), the same
logits as peft's own adapter, no transformers import, and the cache rebuilt when damaged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scribe.engine import paths
from scribe.engine.runtime import lora_merge, model_files
from scribe.engine.runtime.generation import Generator
from scribe.engine.runtime.models import load
from scribe.engine.runtime.options import GenerationOptions


def trained_lora(base: Path, folder: Path) -> Path:
    """A peft LoRA on every GPT-2 projection with non-zero B (a fresh one is the identity)."""
    import peft
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base)
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True
    )
    adapter = peft.get_peft_model(model, config)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in adapter.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    adapter.peft_config["default"].base_model_name_or_path = str(base)
    adapter.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


@pytest.fixture
def lora_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return trained_lora(tiny_model_dir, tmp_path / "my-lora")


def test_the_merged_adapter_runs_the_fast_path_with_peft_s_output(
    lora_dir: Path, tiny_model_dir: Path
) -> None:
    loaded = load(str(lora_dir))
    assert loaded.weights is not None  # the fast path, not a transformers model
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(loaded.card.base_model)
    reference = PeftModel.from_pretrained(base, lora_dir).eval()
    gen = Generator(loaded)
    ids = gen.encode("The quick brown fox jumps over the lazy dog.")
    greedy = GenerationOptions(temperature=0.0, max_new_tokens=12, dry_multiplier=0)  # as peft
    with torch.no_grad():
        out = reference.generate(
            torch.tensor([ids]), max_new_tokens=12, do_sample=False, pad_token_id=0
        )
    assert gen.complete_text(ids, greedy) == gen.decode(out[0, len(ids) :].tolist())
    plain = Generator(load(str(tiny_model_dir))).complete_text(ids, greedy)
    assert gen.complete_text(ids, greedy) != plain  # the adapter really changed the model


def test_the_merge_is_cached_and_rebuilt_when_damaged(lora_dir: Path) -> None:
    load(str(lora_dir))
    cached = sorted((paths.cache_dir() / "merged").rglob(lora_merge.MERGED_FILE))
    assert len(cached) == 1
    cached[0].write_bytes(b"garbage")
    first = Generator(load(str(lora_dir))).complete_text("Hello", GenerationOptions(temperature=0))
    assert model_files.safetensors_shapes(cached[0])  # built again, whole
    again = Generator(load(str(lora_dir))).complete_text("Hello", GenerationOptions(temperature=0))
    assert first == again


@pytest.mark.slow
def test_complete_on_a_lora_prints_nothing_on_stderr(lora_dir: Path, scribe_home: Path) -> None:
    import os

    env = {**os.environ, "SCRIBE_HOME": str(scribe_home), "HF_HUB_OFFLINE": "1"}
    code = (
        "import sys; from scribe.tui.cli import main; rc = main(sys.argv[1:]); "
        "print('transformers' in sys.modules, 'peft' in sys.modules, file=sys.stderr); "
        "sys.exit(rc)"
    )
    args = ["complete", "--model", str(lora_dir), "--max-tokens", "5", "--temperature", "0"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], input=b"The writer", capture_output=True, env=env
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr.decode().strip() == "False False"  # no warning, no bar, no peft import
