"""`scribe finetune`: teach a model the user's text or task.

The engine (scribe.engine.finetune) does the work and reports events; this module turns flags
into settings and renders the events: a rich progress bar on stderr, tables on stdout.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from scribe.tui.common_args import add_command, model_spec

SHAPES_HELP = (
    "tiny (2x128, 256 positions, 4k vocab), mini (4x256, 8k), small (6x384, 12k), "
    "medium (8x512, 16k), gpt2 (12x768, 16k), or LAYERSxWIDTH such as 6x384; 1024 positions "
    "unless --n-positions"
)

EPILOG = """\
data formats (detected per file):
  text files or folders (.txt .md ...)   packed into blocks, documents joined with end-of-text
  JSONL {"prompt": ..., "completion": ...}  loss on the completion and its end-of-text only
  JSONL {"messages": [{"role", "content"}...]}  chat transcripts rendered with the chat
                                          template's [chat] formats; loss on assistant turns

defaults that fit the base model (any flag given wins; printed at the start):
  base parameters   --lr full   lora    prefix     training tokens   --epochs
  under 20M         1e-3        3e-3    1e-2       under 300k        5
  20M-60M           5e-4        2e-3    1e-2       300k-1M           3
  60M-200M          1e-4        1e-3    1e-2       1M-10M            2
  200M+             5e-5        3e-4    1e-2       10M+              1
  from scratch      1e-3
  epochs are capped to about 4 minutes of training on a 2-core CPU (at least one epoch);
  --dry-run shows the plan and its estimated time.

examples:
  scribe finetune notes/ --out my-style
  scribe finetune notes/ --out my-style --model gpt2 --epochs 2
  scribe finetune pairs.jsonl --out summarizer --model gpt2 --method lora --merge
  scribe finetune books/ --out base --from-scratch small --max-steps 20000 --save-dtype float16
  scribe finetune --out my-style --resume          (after Ctrl-C or a crash)
  torchrun --nproc_per_node 2 -m scribe.tui.cli finetune notes/ --out my-style --model gpt2

The model lands in the data dir's models/NAME (or the path given to --out) with scribe.json and
report.md; the run folder NAME/run/ keeps metrics.jsonl, and checkpoints until the run finishes.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "finetune",
        "teach a model your text or task (full, LoRA, prefix, or from scratch)",
        "Fine-tune a model on text files, prompt/completion pairs or chat transcripts, "
        "evaluate it before and after, and save it as a model scribe can use.",
        EPILOG,
    )
    p.add_argument("data", nargs="*", metavar="DATA", help="text files, folders or .jsonl files")
    p.add_argument("--out", required=True, metavar="NAME", help="model name (or a folder path)")
    p.add_argument(
        "--model",
        type=model_spec("--model"),
        metavar="BASE",
        help="base model: folder, name or hub id",
    )
    p.add_argument("--method", choices=["full", "lora", "prefix"], default="full")
    p.add_argument("--from-scratch", metavar="SHAPE", help=f"train a new model: {SHAPES_HELP}")
    p.add_argument("--vocab-size", type=int, metavar="N", help="--from-scratch tokenizer size")
    p.add_argument("--n-positions", type=int, metavar="N", help="--from-scratch context length")

    t = p.add_argument_group("training")
    length = t.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs", type=float, metavar="N", help="passes over the data (by data size)"
    )
    length.add_argument("--max-steps", type=int, metavar="N", help="optimizer steps instead")
    t.add_argument(
        "--lr",
        type=float,
        help="peak learning rate (default: by the base model's size and --method, below)",
    )
    t.add_argument("--batch-size", type=int, default=8, metavar="N", help="blocks per micro-step")
    t.add_argument("--grad-accum", type=int, default=1, metavar="N", help="micro-steps per step")
    t.add_argument("--block-size", type=int, metavar="N", help="tokens per block (512)")
    t.add_argument("--val-fraction", type=float, default=0.05, metavar="F")
    t.add_argument("--test-fraction", type=float, default=0.05, metavar="F")
    t.add_argument(
        "--patience",
        type=int,
        default=3,
        metavar="N",
        help="stop after N evaluations without improvement (0: never)",
    )
    t.add_argument("--eval-every", type=int, metavar="N", help="steps between evaluations")
    t.add_argument("--save-every", type=int, metavar="N", help="steps between checkpoints")
    t.add_argument("--sample-every", type=int, metavar="N", help="steps between samples (0 off)")
    t.add_argument(
        "--sample-prompt",
        action="append",
        default=[],
        metavar="TEXT",
        help="a fixed prompt for samples (repeatable)",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: measured)")
    t.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (default: where the hardware supports it)",
    )
    t.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the training step: faster steps after a minute of compiling",
    )
    t.add_argument(
        "--fim",
        type=float,
        default=0.0,
        metavar="RATE",
        help="teach fill-in-the-middle: rearrange this fraction of training chunks (e.g. 0.5)",
    )
    t.add_argument("--dropout", type=float, metavar="P")
    t.add_argument("--weight-decay", type=float, default=0.1, metavar="W")
    t.add_argument(
        "--warmup",
        type=float,
        default=0.05,
        metavar="F",
        help="warmup: a fraction of the steps, or a step count if >= 1",
    )
    t.add_argument("--lora-r", type=int, default=8, metavar="R")
    t.add_argument("--lora-alpha", type=int, default=16, metavar="A")
    t.add_argument("--lora-dropout", type=float, default=0.05, metavar="P")
    t.add_argument("--prefix-tokens", type=int, default=16, metavar="N")
    t.add_argument(
        "--chat-template",
        default="chat",
        metavar="NAME",
        help="template whose [chat] formats render chat transcripts",
    )
    t.add_argument(
        "--eval-examples",
        type=int,
        default=50,
        metavar="N",
        help="test pairs generated for BLEU/ROUGE",
    )

    o = p.add_argument_group("output and runs")
    o.add_argument("--merge", action="store_true", help="LoRA: save a merged model")
    o.add_argument("--save-dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    o.add_argument("--keep-checkpoints", type=int, default=2, metavar="K")
    o.add_argument("--resume", action="store_true", help="continue the run in --out")
    o.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    o.add_argument("--dry-run", action="store_true", help="show data counts and an example")
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    from scribe.engine.finetune.settings import FinetuneSettings

    return FinetuneSettings(
        data=list(args.data),
        out=args.out,
        model=args.model,
        method=args.method,
        from_scratch=args.from_scratch,
        vocab_size=args.vocab_size,
        n_positions=args.n_positions,
        epochs=args.epochs,
        max_steps=args.max_steps,
        lr=args.lr,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        block_size=args.block_size,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        patience=args.patience,
        eval_every=args.eval_every,
        save_every=args.save_every,
        sample_every=args.sample_every,
        sample_prompts=list(args.sample_prompt),
        seed=args.seed,
        threads=args.threads,
        bf16=args.bf16,
        compile=args.compile,
        fim=args.fim,
        dropout=args.dropout,
        weight_decay=args.weight_decay,
        warmup=args.warmup,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        prefix_tokens=args.prefix_tokens,
        chat_template=args.chat_template,
        eval_examples=args.eval_examples,
        merge=args.merge,
        save_dtype=args.save_dtype,
        keep_checkpoints=args.keep_checkpoints,
        resume=args.resume,
        overwrite=args.overwrite,
        dry_run=args.dry_run,
        command=shlex.join(["scribe", *sys.argv[1:]]),
    )


def run(args: argparse.Namespace) -> int:
    from scribe.engine.errors import InputError
    from scribe.engine.finetune import run_finetune

    if not args.data and not args.resume:
        raise InputError("no training data given: pass text files, folders or .jsonl files")
    from scribe.engine.runtime.models import quiet_transformers

    quiet_transformers()  # our own bar is the one to watch
    main_rank = os.environ.get("RANK", "0") == "0"
    view = FinetuneView(quiet=not main_rank)
    with view:
        result = run_finetune(settings_from_args(args), view.on_event)
    if main_rank:
        view.show_result(result)
    return 0


def _one_line(text: str, limit: int = 240) -> str:
    """Samples can be long runs of blank lines early in training: keep table rows compact."""
    flat = " ".join(text.replace("\n", " ⏎ ").split())
    return flat if len(flat) <= limit else flat[:limit] + " …"


class FinetuneView:
    """Renders the engine's events: progress bar and notes on stderr, result tables on stdout."""

    def __init__(self, quiet: bool = False) -> None:
        from rich.console import Console

        self.quiet = quiet
        self.err = Console(stderr=True)
        self.out = Console()
        self.progress: Any = None
        self.task: Any = None
        self.val = "-"

    def __enter__(self) -> FinetuneView:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_bar()

    def _stop_bar(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _start_bar(self, total: int, start: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("val {task.fields[val]}"),
            TextColumn("{task.fields[speed]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.err,
        )
        self.task = self.progress.add_task(
            "train", total=total, completed=start, loss="-", val=self.val, speed="-"
        )
        self.progress.start()

    def note(self, text: Any) -> None:
        if self.quiet:
            return
        (self.progress.console if self.progress else self.err).print(text, highlight=False)

    def _sample_line(self, step: int, prompt: str, text: str) -> None:
        """One line per sample, never wider than the terminal, so the bar stays in view."""
        from rich.text import Text

        from scribe.engine.finetune.report import EMPTY

        console = self.progress.console if self.progress else self.err
        line = Text(f"step {step} sample: ", style="dim")
        line.append(_one_line(prompt, 60))
        line.append(" " + (_one_line(text) if text.strip() else EMPTY), style="cyan")
        line.truncate(max(20, console.width - 1), overflow="ellipsis")
        self.note(line)

    def on_event(self, event: Any) -> None:
        from scribe.engine.finetune import events as ev

        if self.quiet:
            return
        if isinstance(event, ev.Stage):
            self.note(f"[dim]-[/dim] {event.message}")
        elif isinstance(event, ev.TrainStart):
            where = f"{event.world_size} processes, " if event.world_size > 1 else ""
            self.note(
                f"[dim]-[/dim] training {event.total_steps} steps of "
                f"{event.tokens_per_step} tokens ({where}{event.device}, {event.threads} threads, "
                f"bf16 {'on' if event.bf16 else 'off'})"
            )
            self._start_bar(event.total_steps, event.start_step)
        elif isinstance(event, ev.StepDone) and self.progress is not None:
            self.progress.update(
                self.task,
                completed=event.step,
                loss=f"{event.loss:.3f}",
                speed=f"{event.tokens_per_s:,.0f}",
            )
        elif isinstance(event, ev.EvalDone):
            self.val = f"{event.val_loss:.3f}" + ("*" if event.improved else "")
            if self.progress is not None:
                self.progress.update(self.task, val=self.val)
        elif isinstance(event, ev.SampleDone):
            for prompt, text in event.samples:
                self._sample_line(event.step, prompt, text)
        elif isinstance(event, ev.CheckpointSaved):
            pass  # frequent; the run folder shows them
        elif isinstance(event, ev.TrainEnd):
            self._stop_bar()
            best = (
                f"; best val loss {event.best_val_loss:.4f} at step {event.best_step}"
                if event.best_val_loss is not None
                else ""
            )
            self.note(f"[dim]-[/dim] stopped at step {event.step} ({event.reason}){best}")

    def show_result(self, result: Any) -> None:
        from rich.table import Table

        summary = result.summary
        data = Table("split", "documents", "tokens", "trained tokens", "blocks", title="data")
        for split in ("train", "val", "test"):
            data.add_row(
                split,
                str(summary["documents"][split]),
                str(summary["tokens"][split]),
                str(summary["trained_tokens"][split]),
                str(summary["blocks"][split]),
            )
        if result.dry_run:
            files = ", ".join(f"{f['path']} ({f['format']})" for f in summary["files"])
            self.out.print(f"files: {files}", highlight=False)
            self.out.print(data)
            plan = result.plan
            from scribe.engine.finetune.defaults import short

            minutes, seconds = divmod(round(plan["estimated_seconds"]), 60)
            self.out.print(
                f"plan: {plan['total_steps']} steps of {plan['micro_batch']} x "
                f"{plan['grad_accum']} blocks of {summary['block_size']} tokens "
                f"({plan['tokens']:,} tokens), lr {short(plan['lr'])}; about {minutes} min "
                f"{seconds:02d} s of training on this machine (plus evaluation)",
                highlight=False,
            )
            if summary.get("truncated_examples"):
                self.out.print(f"{summary['truncated_examples']} examples cut to one block")
            self.out.print("example (text between ⟦ ⟧ is context only, no loss):", highlight=False)
            self.out.print(result.example, markup=False, highlight=False)
            self.out.print("dry run: nothing trained, nothing written", highlight=False)
            return
        from scribe.engine.finetune.report import metric_rows, shown

        metrics = Table("test split", "before", "after", title=f"evaluation: {result.out.name}")
        for name, before, after in metric_rows(result.before, result.after):
            metrics.add_row(name, before, after)
        self.out.print(metrics)
        if result.prompts:
            samples = Table("prompt", "before", "after", title="samples (greedy)", show_lines=True)
            for prompt, b, a in zip(
                result.prompts, result.samples_before, result.samples_after, strict=False
            ):
                samples.add_row(_one_line(prompt), _one_line(shown(b)), _one_line(shown(a)))
            self.out.print(samples)
        self.out.print(
            f"saved {result.out} (report: {result.report}); try it: "
            f"scribe complete --model {shlex.quote(str(result.out))}",
            highlight=False,
            markup=False,
        )
