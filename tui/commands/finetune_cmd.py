"""`scribe finetune`: teach a model the user's text or task.

The engine (scribe.engine.finetune) does the work and reports events; this module turns flags
into settings and renders the events: a rich progress bar on stderr, tables on stdout.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Any

from scribe.engine.finetune import defaults
from scribe.engine.finetune.settings import (
    DEFAULT_BLOCK,
    METHODS,
    OPTIMIZERS,
    SAVE_DTYPES,
    SCHEDULES,
    FinetuneSettings,
)
from scribe.tui.common_args import add_command, model_spec

if TYPE_CHECKING:
    from scribe.engine.finetune.result import DryRun, Finetuned, FinetuneResult

# The settings' fields by name: each flag's default is its field's.
SETTINGS = {spec.name: spec for spec in fields(FinetuneSettings)}

# Help texts too long to share a line with their flag.
BASE_HELP = "base model: folder, name or hub id"
LR_HELP = "peak learning rate (default: by the base model's size and --method, below)"
PATIENCE_HELP = "stop after N evaluations without improvement (0: never)"
BF16_HELP = "bf16 autocast (default: where the hardware supports it)"
COMPILE_HELP = "torch.compile the training step: faster steps after a minute of compiling"
FIM_HELP = "teach fill-in-the-middle: rearrange this fraction of training chunks (e.g. 0.5)"
WARMUP_HELP = "warmup: a fraction of the steps, or a step count if >= 1"
SCHEDULE_HELP = (
    "learning rate after warmup: cosine to lr/10 (default), constant, or linear to zero "
    "(constant then a linear run from its model: warmup-stable-decay)"
)
MINUTES_HELP = f"fit the default epochs into about M minutes here ({defaults.DEFAULT_MINUTES:g})"
OPTIMIZER_HELP = "adamw (default), or muon for the block matrices (full training)"
CHAT_TEMPLATE_HELP = "template whose [chat] formats render chat transcripts"

SHAPES_HELP = (
    "tiny (2x128, 256 positions, 4k vocab), mini (4x256, 8k), small (6x384, 12k), "
    "medium (8x512, 16k), gpt2 (12x768, 16k), or LAYERSxWIDTH such as 6x384; 1024 positions "
    "unless --n-positions"
)

SUMMARY = "teach a model your text or task (full, LoRA, prefix, or from scratch)"
DESCRIPTION = (
    "Fine-tune a model on text files, prompt/completion pairs or chat transcripts, "
    "evaluate it before and after, and save it as a model scribe can use."
)
DATA_FORMATS = """\
data formats (detected per file):
  text files or folders (.txt .md ...)   packed into blocks, documents joined with end-of-text
  JSONL {"prompt": ..., "completion": ...}  loss on the completion and its end-of-text only
  JSONL {"messages": [{"role", "content"}...]}  chat transcripts rendered with the chat
                                          template's [chat] formats; loss on assistant turns
"""
EXAMPLES = """\
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


def _bands(limits: list[float]) -> list[str]:
    """Each row's range from the upper bounds: under 20M, 20M-60M, ..., 200M+."""
    names = [f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k" for n in limits[:-1]]
    middle = [f"{low}-{high}" for low, high in zip(names, names[1:], strict=False)]
    return [f"under {names[0]}", *middle, f"{names[-1]}+"]


def defaults_help() -> str:
    """The learning-rate and epoch tables of engine.finetune.defaults, as --help shows them."""
    lr_bands = _bands([limit for limit, _ in defaults.LR_TABLE])
    epoch_bands = _bands([limit for limit, _ in defaults.EPOCH_TABLE])
    lines = [
        "defaults that fit the base model (any flag given wins; printed at the start):",
        "  base parameters   --lr full   lora    prefix     training tokens   --epochs",
    ]
    for band, (_, rates), tokens, (_, epochs) in zip(
        lr_bands, defaults.LR_TABLE, epoch_bands, defaults.EPOCH_TABLE, strict=True
    ):
        full, lora, prefix = (defaults.short(rates[m]) for m in METHODS)
        lines.append(f"  {band:<18}{full:<12}{lora:<8}{prefix:<11}{tokens:<18}{epochs:g}")
    lines += [
        f"  {'from scratch':<18}{defaults.short(defaults.SCRATCH_LR)}",
        f"  epochs are capped so the run takes about {defaults.DEFAULT_MINUTES:g} minutes "
        "(--minutes)",
        "  at the speed its first steps measure here (at least one epoch);",
        "  --dry-run shows the plan and its estimated time.",
    ]
    return "\n".join(lines) + "\n"


EPILOG = f"{DATA_FORMATS}\n{defaults_help()}\n{EXAMPLES}"


def _default(name: str) -> Any:
    """The FinetuneSettings default of field `name`: the one place defaults are written."""
    spec = SETTINGS[name]
    return spec.default_factory() if spec.default_factory is not MISSING else spec.default


def _setting(group: Any, flag: str, **options: Any) -> None:
    """A flag for the settings field it names (--batch-size: batch_size), defaulting to it."""
    dest = options.pop("dest", flag.removeprefix("--").replace("-", "_"))
    group.add_argument(flag, dest=dest, default=_default(dest), **options)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "finetune", SUMMARY, DESCRIPTION, EPILOG)
    p.add_argument("data", nargs="*", metavar="DATA", help="text files, folders or .jsonl files")
    p.add_argument("--out", required=True, metavar="NAME", help="model name (or a folder path)")
    _setting(p, "--model", type=model_spec("--model"), metavar="BASE", help=BASE_HELP)
    _setting(p, "--method", choices=list(METHODS))
    _setting(p, "--from-scratch", metavar="SHAPE", help=f"train a new model: {SHAPES_HELP}")
    _setting(p, "--vocab-size", type=int, metavar="N", help="--from-scratch tokenizer size")
    _setting(p, "--n-positions", type=int, metavar="N", help="--from-scratch context length")

    t = p.add_argument_group("training")
    length = t.add_mutually_exclusive_group()
    _setting(
        length, "--epochs", type=float, metavar="N", help="passes over the data (by data size)"
    )
    _setting(length, "--max-steps", type=int, metavar="N", help="optimizer steps instead")
    _setting(t, "--minutes", type=float, metavar="M", help=MINUTES_HELP)
    _setting(t, "--lr", type=float, help=LR_HELP)
    _setting(t, "--batch-size", type=int, metavar="N", help="blocks per micro-step")
    _setting(t, "--grad-accum", type=int, metavar="N", help="micro-steps per step")
    _setting(t, "--block-size", type=int, metavar="N", help=f"tokens per block ({DEFAULT_BLOCK})")
    _setting(t, "--val-fraction", type=float, metavar="F")
    _setting(t, "--test-fraction", type=float, metavar="F")
    _setting(t, "--patience", type=int, metavar="N", help=PATIENCE_HELP)
    _setting(t, "--eval-every", type=int, metavar="N", help="steps between evaluations")
    _setting(t, "--save-every", type=int, metavar="N", help="steps between checkpoints")
    _setting(t, "--sample-every", type=int, metavar="N", help="steps between samples (0 off)")
    _setting(
        t,
        "--sample-prompt",
        dest="sample_prompts",
        action="append",
        metavar="TEXT",
        help="a fixed prompt for samples (repeatable)",
    )
    _setting(t, "--seed", type=int)
    _setting(t, "--threads", type=int, metavar="N", help="CPU threads (default: measured)")
    _setting(t, "--bf16", action=argparse.BooleanOptionalAction, help=BF16_HELP)
    _setting(t, "--compile", action="store_true", help=COMPILE_HELP)
    _setting(t, "--fim", type=float, metavar="RATE", help=FIM_HELP)
    _setting(t, "--dropout", type=float, metavar="P")
    _setting(t, "--weight-decay", type=float, metavar="W")
    _setting(t, "--warmup", type=float, metavar="F", help=WARMUP_HELP)
    _setting(t, "--schedule", choices=list(SCHEDULES), help=SCHEDULE_HELP)
    _setting(t, "--optimizer", choices=list(OPTIMIZERS), help=OPTIMIZER_HELP)
    _setting(t, "--adam-beta2", type=float, metavar="B", help="AdamW's beta2 (0.95)")
    _setting(t, "--lora-r", type=int, metavar="R")
    _setting(t, "--lora-alpha", type=int, metavar="A")
    _setting(t, "--lora-dropout", type=float, metavar="P")
    _setting(t, "--prefix-tokens", type=int, metavar="N")
    _setting(t, "--chat-template", metavar="NAME", help=CHAT_TEMPLATE_HELP)
    _setting(
        t, "--eval-examples", type=int, metavar="N", help="test pairs generated for BLEU/ROUGE"
    )

    o = p.add_argument_group("output and runs")
    _setting(o, "--merge", action="store_true", help="LoRA: save a merged model")
    _setting(o, "--save-dtype", choices=list(SAVE_DTYPES))
    _setting(o, "--keep-checkpoints", type=int, metavar="K")
    _setting(o, "--resume", action="store_true", help="continue the run in --out")
    _setting(o, "--overwrite", action="store_true", help="replace an existing --out")
    _setting(o, "--dry-run", action="store_true", help="show data counts and an example")
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> FinetuneSettings:
    """The settings from the parsed flags: each field its flag sets (max_grad_norm has none).
    `args.command` is the subcommand's name; the card records the whole command line."""
    given = {name: getattr(args, name) for name in SETTINGS if hasattr(args, name)}
    given["command"] = shlex.join(["scribe", *sys.argv[1:]])
    return FinetuneSettings(**given)


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

    def show_result(self, result: FinetuneResult) -> None:
        """The data table, then a dry run's plan and example, or the run's before/after."""
        from rich.table import Table

        from scribe.engine.finetune.result import DryRun

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
        if isinstance(result, DryRun):
            self._show_plan(result, data)
        else:
            self._show_scores(result)

    def _show_plan(self, result: DryRun, data: Any) -> None:
        summary, plan = result.summary, result.plan
        files = ", ".join(f"{f['path']} ({f['format']})" for f in summary["files"])
        self.out.print(f"files: {files}", highlight=False)
        self.out.print(data)
        minutes, seconds = divmod(round(result.estimated_seconds), 60)
        self.out.print(
            f"plan: {plan.total_steps} steps of {plan.micro_batch} x "
            f"{plan.grad_accum} blocks of {summary['block_size']} tokens "
            f"({result.tokens:,} tokens), lr {defaults.short(plan.lr)}; "
            f"about {minutes} min {seconds:02d} s of training on this machine "
            "(plus evaluation)",
            highlight=False,
        )
        if summary.get("truncated_examples"):
            self.out.print(f"{summary['truncated_examples']} examples cut to one block")
        self.out.print("example (text between ⟦ ⟧ is context only, no loss):", highlight=False)
        self.out.print(result.example, markup=False, highlight=False)
        self.out.print("dry run: nothing trained, nothing written", highlight=False)

    def _show_scores(self, result: Finetuned) -> None:
        from rich.table import Table

        from scribe.engine.finetune.report import metric_rows, shown

        scores = result.scores
        metrics = Table("test split", "before", "after", title=f"evaluation: {result.out.name}")
        for name, before, after in metric_rows(scores.before.metrics, scores.after.metrics):
            metrics.add_row(name, before, after)
        self.out.print(metrics)
        if scores.prompts:
            samples = Table("prompt", "before", "after", title="samples (greedy)", show_lines=True)
            for prompt, b, a in zip(
                scores.prompts, scores.before.samples, scores.after.samples, strict=False
            ):
                samples.add_row(_one_line(prompt), _one_line(shown(b)), _one_line(shown(a)))
            self.out.print(samples)
        report = result.saved.report if result.saved else None
        self.out.print(
            f"saved {result.out} (report: {report}); try it: "
            f"scribe complete --model {shlex.quote(str(result.out))}",
            highlight=False,
            markup=False,
        )
