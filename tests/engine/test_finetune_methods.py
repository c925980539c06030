"""LoRA (peft; Conv1D fan_in_fan_out; --merge), prefix tuning that scribe's engine really
applies, chat transcripts recorded in the card, and BLEU/ROUGE before and after for
prompt/completion data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scribe.engine.finetune import FinetuneSettings, run_finetune
from scribe.engine.prompting.chat_format import ChatFormat
from tests.factory import write_pairs, write_text

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def write_chats(folder: Path, count: int = 20) -> Path:
    lines = []
    for i in range(count):
        messages = [
            {"role": "user", "content": f"Name a colour, number {i}."},
            {"role": "assistant", "content": "Blue, like the sea."},
        ]
        lines.append(json.dumps({"messages": messages}))
    path = folder / "chats.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def small(data: list[Path], out: Path, model: Path, **changes) -> FinetuneSettings:
    base = dict(
        data=[str(p) for p in data],
        out=str(out),
        model=str(model),
        block_size=64,
        batch_size=8,
        max_steps=30,
        eval_every=10,
        threads=1,
        sample_every=0,
        eval_examples=6,
        patience=0,
        bf16=False,  # fp32 arithmetic: these tests compare numbers that bf16 would move
    )
    base.update(changes)
    return FinetuneSettings(**base)


def logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def test_lora_adapter_with_chat_and_pairs(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = [write_pairs(tmp_path, 120), write_chats(tmp_path)]
    out = tmp_path / "lora"
    result = run_finetune(small(data, out, tiny_model_dir, method="lora", lr=1e-2))
    assert result.scores.after.metrics["perplexity"] < result.scores.before.metrics["perplexity"]

    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["fan_in_fan_out"] is True
    assert set(config["target_modules"]) == {"c_attn", "c_proj", "c_fc"}
    assert config["base_model_name_or_path"] == str(tiny_model_dir.resolve())

    card = json.loads((out / "scribe.json").read_text())
    assert card["method"] == "lora" and card["format"] == "LoRA adapter"
    # Chat transcripts were rendered with the chat template's [chat] formats, recorded as such.
    assert card["chat"] == ChatFormat.from_template("chat").as_dict()
    # ... with its stops, so `scribe chat` stops where the model learned to hand the turn back.
    assert set(card["chat"]) == {"system", "user", "assistant", "reply", "stop"}
    # BLEU and ROUGE on the prompt/completion test pairs, before and after.
    for side in ("before", "after"):
        assert {"bleu", "rouge1", "rouge2", "rougeL", "perplexity"} <= set(card["metrics"][side])
    report = (out / "report.md").read_text()
    assert "| BLEU |" in report and "| ROUGE-L F1 |" in report

    # scribe (peft) and plain transformers (its peft integration) load the same tuned model.
    from transformers import AutoModelForCausalLM

    from scribe.engine.runtime.models import load

    tuned = load(str(out))
    plain = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = tuned.tokenizer.encode("The writer opened the door. Verb:")
    torch.testing.assert_close(logits(tuned.model, ids), logits(plain, ids), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(logits(tuned.model, ids), logits(base, ids), atol=1e-3)


def test_lora_merge_writes_a_plain_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "merged"
    run_finetune(
        small(
            [write_pairs(tmp_path, 60)],
            out,
            tiny_model_dir,
            method="lora",
            merge=True,
            max_steps=4,
            lr=1e-2,
        )
    )
    assert (out / "config.json").exists() and not (out / "adapter_config.json").exists()
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not hasattr(merged, "peft_config")
    assert not torch.equal(
        merged.transformer.h[0].mlp.c_fc.weight, base.transformer.h[0].mlp.c_fc.weight
    )
    assert json.loads((out / "scribe.json").read_text())["format"] == "model (LoRA merged)"


def greedy_without_cache(model, ids: list[int], n: int, eos: int) -> list[int]:
    """Reference decoding: the whole sequence through the model at every step, no cache."""
    ids = list(ids)
    new = []
    for _ in range(n):
        token = int(logits(model, ids)[-1].argmax())
        if token == eos:
            break
        ids.append(token)
        new.append(token)
    return new


def test_prefix_tuning_changes_what_scribes_engine_generates(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    data = write_text(tmp_path, paragraphs=120)
    out = tmp_path / "prefix"
    result = run_finetune(
        small([data], out, tiny_model_dir, method="prefix", lr=3e-2, block_size=32)
    )
    assert result.scores.after.metrics["perplexity"] < result.scores.before.metrics["perplexity"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "PREFIX_TUNING" and config["num_virtual_tokens"] == 16

    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.models import load
    from scribe.engine.runtime.options import GenerationOptions
    from scribe.engine.runtime.prefix_adapter import PrefixModel

    tuned = load(str(out))
    assert isinstance(tuned.model, PrefixModel)
    base = load(str(tiny_model_dir))
    # The loop guard is off: the reference below has none.
    greedy = GenerationOptions(max_new_tokens=20, temperature=0, dry_multiplier=0)
    prompt = "The writer"
    gen = Generator(tuned)
    text = gen.complete_text(prompt, greedy)
    assert text != Generator(base).complete_text(prompt, greedy)  # the prefix is really used

    tok = tuned.tokenizer
    reference = greedy_without_cache(tuned.model, tok.encode(prompt), 20, tok.eos_token_id)
    assert text == tok.decode(reference)
    # A follow-up prompt reuses the cached prefix of the first (the engine crops the cache).
    longer = prompt + text[: len(text) // 2]
    stream = gen.stream(longer, greedy)
    again = stream.text()
    assert stream.stats.reused_tokens > 0
    assert again == tok.decode(
        greedy_without_cache(tuned.model, tok.encode(longer), 20, tok.eos_token_id)
    )
