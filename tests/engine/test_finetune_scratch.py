"""`--from-scratch` and full fine-tuning end to end on tiny models: the output folder loads in
scribe and in plain transformers, the card and metrics are written, early stopping restores the best
weights, and nothing but the finished model looks like a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scribe.engine import paths
from scribe.engine.finetune import FinetuneSettings, run_finetune
from scribe.engine.finetune.events import EvalDone, StepDone, TrainStart
from tests.factory import scratch_settings, write_text


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_from_scratch_trains_a_model_that_scribe_and_transformers_load(tmp_path: Path) -> None:
    data = write_text(tmp_path, paragraphs=150)
    events = []
    result = run_finetune(scratch_settings(data, save_dtype="bfloat16"), events.append)
    out = paths.models_dir() / "scratchy"
    assert result.out == out
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "scribe.json",
        "report.md",
    } <= names
    assert not (out / "run" / "checkpoints").exists()  # only needed to resume

    # The loss went down where it counts: perplexity on held-out test passages.
    assert (
        result.scores.after.metrics["perplexity"] < result.scores.before.metrics["perplexity"] / 3
    )
    card = json.loads((out / "scribe.json").read_text())
    assert card["base_model"] == "scratch:2x32"
    assert card["shape"]["n_layer"] == 2 and card["shape"]["n_embd"] == 32
    assert card["shape"]["n_positions"] == 64
    assert card["data"]["files"][0]["path"] == str(data)
    assert card["data"]["tokens"]["train"] > 1000 and card["data"]["tokens"]["test"] > 0
    assert card["command"] == ""  # set by the CLI
    assert card["metrics"]["test_perplexity_after"] == result.scores.after.metrics["perplexity"]
    assert card["training"]["threads"] == 1 and torch.get_num_threads() == 1
    assert "chat" not in card  # no chat data

    # Plain transformers loads it, in the saved dtype; the tokenizer was trained on the data.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.dtype == torch.bfloat16
    assert model.config.n_positions == 64 and model.config.vocab_size == len(tok) <= 400
    assert tok.decode(tok.encode("The writer opened the door.")) == "The writer opened the door."
    assert tok.eos_token == "<|endoftext|>"

    # scribe loads it by name and generates with its own engine.
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.models import load
    from scribe.engine.runtime.options import GenerationOptions

    gen = Generator(load("scratchy"))
    text = gen.complete_text("The writer", GenerationOptions(max_new_tokens=8, temperature=0))
    assert text.strip()

    # Progress went through events, and metrics.jsonl has every step and evaluation.
    steps = [e.step for e in events if isinstance(e, StepDone)]
    assert steps == list(range(1, 41))
    assert [e.step for e in events if isinstance(e, EvalDone)] == [10, 20, 30, 40]
    start = next(e for e in events if isinstance(e, TrainStart))
    assert start.threads == 1 and start.total_steps == 40
    records = [
        json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records if "loss" in r] == steps
    assert [r["step"] for r in records if "val_loss" in r] == [10, 20, 30, 40]
    assert any("samples" in r for r in records)
    report = (out / "report.md").read_text()
    assert "| test perplexity |" in report and "The writer" in report


@pytest.mark.slow
def test_early_stopping_restores_the_best_weights(tmp_path: Path) -> None:
    data = write_text(tmp_path, paragraphs=150)
    # A learning rate far too high: validation loss gets worse after the first evaluations.
    settings = scratch_settings(data, lr=0.5, eval_every=2, patience=2, max_steps=60, dropout=0.0)
    result = run_finetune(settings)
    outcome = result.outcome
    assert outcome.reason == "early stop" and outcome.steps < 60
    assert outcome.best_step < outcome.steps
    assert outcome.final_val_loss > outcome.best_val_loss
    # The saved model is the best one: its validation loss is the best seen, not the last.
    assert val_loss_of_saved_model(result.out, settings) == pytest.approx(
        outcome.best_val_loss, rel=1e-5
    )
    card = json.loads((result.out / "scribe.json").read_text())
    assert card["training"]["best_step"] == outcome.best_step


def val_loss_of_saved_model(out: Path, settings: FinetuneSettings) -> float:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from scribe.engine.finetune.data import find_files, read_documents
    from scribe.engine.finetune.distributed import setup
    from scribe.engine.finetune.splits import split_documents
    from scribe.engine.finetune.tokens import pack, tokenize
    from scribe.engine.finetune.trainer import evaluate_loss

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    docs = read_documents(find_files(settings.data), None)
    split = split_documents(docs, settings.val_fraction, settings.test_fraction, settings.seed)
    val = pack(tokenize(split.val, tok), settings.block_size, tok.eos_token_id, keep_tail=True)
    return evaluate_loss(model, val, settings.batch_size, setup(), bf16=False)


@pytest.mark.slow
def test_full_finetune_of_a_base_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_text(tmp_path, paragraphs=100)
    settings = FinetuneSettings(
        data=[str(data)],
        out=str(tmp_path / "tuned"),
        model=str(tiny_model_dir),
        block_size=32,
        batch_size=4,
        max_steps=20,
        eval_every=10,
        threads=1,
        lr=3e-3,
        sample_every=0,
    )
    result = run_finetune(settings)
    assert result.scores.after.metrics["perplexity"] < result.scores.before.metrics["perplexity"]
    card = json.loads((tmp_path / "tuned" / "scribe.json").read_text())
    assert card["base_model"] == str(tiny_model_dir) and card["method"] == "full"
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "tuned")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.equal(
        model.transformer.h[0].attn.c_attn.weight, base.transformer.h[0].attn.c_attn.weight
    )


def schedule_lrs(schedule: str) -> list[float]:
    from scribe.engine.finetune.trainer import Plan

    plan = Plan(
        total_steps=100,
        micro_batch=1,
        grad_accum=1,
        lr=1.0,
        warmup_steps=10,
        weight_decay=0,
        max_grad_norm=1,
        eval_every=10,
        save_every=10,
        sample_every=0,
        patience=0,
        keep_checkpoints=1,
        seed=0,
        bf16=False,
        schedule=schedule,
    )
    return [plan.lr_at(s) for s in range(100)]


def test_warmup_then_cosine_schedule() -> None:
    lrs = schedule_lrs("cosine")
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # linear warmup
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))  # then only down
    assert lrs[-1] == pytest.approx(0.1, abs=0.01)  # to a tenth at the end


def test_constant_and_linear_schedules_are_the_halves_of_warmup_stable_decay() -> None:
    constant, linear = schedule_lrs("constant"), schedule_lrs("linear")
    assert constant[0] == pytest.approx(0.1) and linear[0] == pytest.approx(0.1)
    assert constant[9:] == [1.0] * 91  # stable: the peak rate to the end
    assert linear[9] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(linear[10:], linear[11:], strict=False))  # then down
    assert linear[-1] == pytest.approx(0.0, abs=0.02)  # to zero at the last step


@pytest.mark.slow
def test_muon_trains_a_model_from_scratch(tmp_path: Path) -> None:
    data = write_text(tmp_path, paragraphs=150)
    result = run_finetune(scratch_settings(data, optimizer="muon", max_steps=20, lr=2e-3))
    losses = [
        json.loads(line)["loss"]
        for line in (result.out / "run" / "metrics.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    assert losses[-1] < losses[0] - 0.5  # it learns


def test_muon_state_round_trips_through_a_checkpoint(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from scribe.engine.finetune.optimizers import MuonAdamW

    def stepped() -> tuple[torch.nn.Module, MuonAdamW]:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        opt = MuonAdamW(model, lr=1e-3, weight_decay=0.1, beta2=0.99)
        model(input_ids=torch.arange(8)[None], labels=torch.arange(8)[None]).loss.backward()
        opt.step()
        return model, opt

    model, opt = stepped()
    muon_params = {id(p) for p in opt.parts[0].param_groups[0]["params"]}
    blocks = {id(p) for n, p in model.named_parameters() if ".h." in n and p.dim() == 2}
    assert muon_params == blocks  # Muon gets exactly the block matrices, AdamW the rest
    state = opt.state_dict()
    fresh = MuonAdamW(AutoModelForCausalLM.from_pretrained(tiny_model_dir), 1e-3, 0.1, 0.99)
    assert not fresh.parts[0].state  # nothing until a step or a checkpoint
    fresh.load_state_dict(state)
    buf = next(iter(fresh.parts[0].state.values()))["momentum_buffer"]
    assert torch.equal(buf, next(iter(opt.parts[0].state.values()))["momentum_buffer"])


@pytest.mark.slow
def test_bf16_autocast_trains_and_saves_float32(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_text(tmp_path, paragraphs=60)
    settings = FinetuneSettings(
        data=[str(data)],
        out=str(tmp_path / "bf16"),
        model=str(tiny_model_dir),
        block_size=32,
        batch_size=4,
        max_steps=3,
        threads=1,
        bf16=True,
        sample_every=0,
    )
    result = run_finetune(settings)
    assert result.saved.card["training"]["bf16"] is True
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / "bf16" / "model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float32}
