"""Training speed: scribe's fine-tuning loop beside a plain Hugging Face `Trainer`, same model,
data, batch and thread count, in one run; full fine-tuning and LoRA, on a GPT-2 124M-shaped model
(random weights: speed does not depend on trained values).

    .venv/bin/python bench/finetune.py [--steps 5] [--batch-size 4] [--block-size 256] [--repeats 2]

Prints tokens/s for each (timed steps exclude the first, warm-up step). The two are run in turn,
`--repeats` times, and the best of each is kept, so a busy machine penalises neither side alone.
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
    from tests.engine.test_finetune_data import english

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
    """Wall time of every optimizer step after the first."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def mark(self) -> None:
        self.marks.append(time.perf_counter())

    def seconds(self) -> float:
        return self.marks[-1] - self.marks[0]

    def steps(self) -> int:
        return len(self.marks) - 1


def run_scribe(path: Path, method: str, blocks: Blocks, args: argparse.Namespace) -> float:
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
    return timer.steps() * args.batch_size * blocks.ids.shape[1] / timer.seconds()


def run_hf_trainer(path: Path, method: str, blocks: Blocks, args: argparse.Namespace) -> float:
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
    return timer.steps() * args.batch_size * blocks.ids.shape[1] / timer.seconds()


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
        print(f"{'method':8} {'scribe tok/s':>13} {'HF Trainer tok/s':>17} {'ratio':>7}")
        for method in args.methods.split(","):
            ours = theirs = 0.0
            for _ in range(args.repeats):
                ours = max(ours, run_scribe(path, method, blocks, args))
                theirs = max(theirs, run_hf_trainer(path, method, blocks, args))
            print(f"{method:8} {ours:13.1f} {theirs:17.1f} {ours / theirs:7.2f}", flush=True)


if __name__ == "__main__":
    main()
