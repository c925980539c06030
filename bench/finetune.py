"""Training speed: scribe's fine-tuning loop beside a plain Hugging Face `Trainer`, same model,
data, batch and thread count, in one run; full fine-tuning and LoRA, on a GPT-2 124M-shaped model
(random weights: speed does not depend on trained values).

    .venv/bin/python bench/finetune.py [--steps 5] [--batch-size 4] [--block-size 256] [--repeats 2]

Prints tokens/s for each (timed steps exclude the first, warm-up step), per wall second and per
CPU second of the process (the fair figure on a shared machine; use --threads 1 there). The two
are run in turn, `--repeats` times, and the best of each is kept.
Not part of CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scribe.engine.finetune.distributed import setup  # noqa: E402
from scribe.engine.finetune.methods import prepare  # noqa: E402
from scribe.engine.finetune.settings import FinetuneSettings  # noqa: E402
from scribe.engine.finetune.tokens import Blocks  # noqa: E402
from scribe.engine.finetune.trainer import Plan, Trainer  # noqa: E402
from tests import factory  # noqa: E402


def make_blocks(tokenizer, n_blocks: int, block: int) -> Blocks:
    from tests.factory import english

    ids = tokenizer.encode(english(n_blocks * block // 8 + 200, seed=5))
    need = n_blocks * block
    ids = (ids * (need // len(ids) + 1))[:need]
    tensor = torch.tensor(ids, dtype=torch.int64).view(n_blocks, block)
    return Blocks(tensor, torch.ones_like(tensor, dtype=torch.bool))


def load_model(path: Path, method: str):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    settings = FinetuneSettings(data=[], out="bench", method=method)
    return prepare(model, method, settings, init_ids=[0]).train()


class StepTimer:
    """Wall and CPU time of every optimizer step after the first. CPU time (of this process)
    is the fair figure on a shared machine: it does not count time spent waiting for a core."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpus: list[float] = []

    def mark(self) -> None:
        self.walls.append(time.perf_counter())
        self.cpus.append(time.process_time())

    def rates(self, tokens_per_step: int) -> tuple[float, float]:
        """(tokens per wall second, tokens per CPU second)."""
        tokens = (len(self.walls) - 1) * tokens_per_step
        return tokens / (self.walls[-1] - self.walls[0]), tokens / (self.cpus[-1] - self.cpus[0])


def run_scribe(
    path: Path, method: str, blocks: Blocks, args: argparse.Namespace
) -> tuple[float, float]:
    model = load_model(path, method)
    plan = Plan(
        total_steps=args.steps + 1,
        micro_batch=args.batch_size,
        grad_accum=1,
        lr=1e-4,
        warmup_steps=1,
        weight_decay=0.0,
        max_grad_norm=1.0,
        eval_every=10**9,
        save_every=10**9,
        sample_every=0,
        patience=0,
        keep_checkpoints=1,
        seed=0,
        bf16=False,
    )
    timer = StepTimer()

    def on_event(event) -> None:
        if type(event).__name__ == "StepDone":
            timer.mark()

    with tempfile.TemporaryDirectory() as run_dir:
        empty = Blocks(blocks.ids[:0], blocks.mask[:0])
        trainer = Trainer(model, plan, blocks, empty, Path(run_dir), setup(), on_event)
        trainer.run()
    return timer.rates(args.batch_size * blocks.ids.shape[1])


def run_hf_trainer(
    path: Path, method: str, blocks: Blocks, args: argparse.Namespace
) -> tuple[float, float]:
    from transformers import Trainer as HFTrainer
    from transformers import TrainerCallback, TrainingArguments

    model = load_model(path, method)
    timer = StepTimer()

    class Timing(TrainerCallback):
        def on_step_end(self, *_args, **_kwargs):
            timer.mark()

    data = [{"input_ids": row, "labels": row} for row in blocks.ids]
    with tempfile.TemporaryDirectory() as out:
        training = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps + 1,
            learning_rate=1e-4,
            warmup_steps=1,
            weight_decay=0.0,
            max_grad_norm=1.0,
            logging_strategy="no",
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            dataloader_num_workers=0,
            disable_tqdm=True,
            seed=0,
        )
        HFTrainer(model=model, args=training, train_dataset=data, callbacks=[Timing()]).train()
    return timer.rates(args.batch_size * blocks.ids.shape[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--methods", default="full,lora")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs; best kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = factory.gpt2_124m(Path(tmp) / "gpt2-124m")
        blocks = make_blocks(
            factory.gpt2_tokenizer(), args.batch_size * (args.steps + 1), args.block_size
        )
        print(
            f"GPT-2 124M shape, batch {args.batch_size} x {args.block_size} tokens, "
            f"{args.steps} timed steps, {args.threads} threads, fp32, AdamW"
        )
        print(
            f"{'method':8} {'scribe tok/s':>13} {'HF tok/s':>9} {'ratio':>6}   "
            f"{'scribe tok/CPU-s':>16} {'HF tok/CPU-s':>13} {'ratio':>6}"
        )
        for method in args.methods.split(","):
            ours, theirs = (0.0, 0.0), (0.0, 0.0)
            for _ in range(args.repeats):
                a = run_scribe(path, method, blocks, args)
                b = run_hf_trainer(path, method, blocks, args)
                ours = (max(ours[0], a[0]), max(ours[1], a[1]))
                theirs = (max(theirs[0], b[0]), max(theirs[1], b[1]))
            print(
                f"{method:8} {ours[0]:13.1f} {theirs[0]:9.1f} {ours[0] / theirs[0]:6.2f}   "
                f"{ours[1]:16.1f} {theirs[1]:13.1f} {ours[1] / theirs[1]:6.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
