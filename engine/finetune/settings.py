"""Everything one fine-tuning run is told to do: the `scribe finetune` flags as a dataclass.

The settings are saved in the run folder, so `--resume` continues with exactly the same ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from scribe.engine.errors import InputError
from scribe.engine.finetune.defaults import DEFAULT_MINUTES

METHODS = ("full", "lora", "prefix")
SAVE_DTYPES = ("float32", "bfloat16", "float16")
SCHEDULES = ("cosine", "constant", "linear")  # after warmup; see trainer.Plan.lr_at
OPTIMIZERS = ("adamw", "muon")
MAX_INT = 2**31 - 1  # seeds are mixed into torch generator seeds; counts never come near it
# Flags that may differ on --resume without changing the result of the run.
RESUME_MAY_CHANGE = ("threads", "resume", "overwrite", "dry_run")
DEFAULT_BLOCK = 512  # tokens per block unless --block-size, or the model's context is shorter


@dataclass
class FinetuneSettings:
    data: list[str]
    out: str
    model: str | None = None  # base model spec; None with from_scratch
    method: str = "full"
    from_scratch: str | None = None  # a shape name in scratch.BLUEPRINTS, or "LAYERSxWIDTH"
    vocab_size: int | None = None  # tokenizer size for --from-scratch (default: the shape's)
    n_positions: int | None = None  # context length for --from-scratch (default 1024)
    epochs: float | None = None
    minutes: float = DEFAULT_MINUTES  # the default epochs fit about this long a run here
    max_steps: int | None = None
    lr: float | None = None  # default depends on the method
    batch_size: int = 8
    grad_accum: int = 1
    block_size: int | None = None  # default: min(n_positions, DEFAULT_BLOCK)
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    patience: int = 3  # evaluations without improvement before stopping; 0 never stops early
    eval_every: int | None = None  # default: about 10 evaluations per run
    save_every: int | None = None  # default: same as eval_every
    sample_every: int | None = None  # default: same as eval_every; 0 turns samples off
    seed: int = 0
    threads: int | None = None  # None: measured
    bf16: bool | None = None  # None: when the hardware runs bf16 natively
    compile: bool = False  # torch.compile the training step (faster steps after a warm-up)
    fim: float = 0.0  # fraction of training chunks rearranged for fill-in-the-middle
    weight_decay: float = 0.1
    warmup: float = 0.05  # fraction of the steps (or a step count when >= 1)
    schedule: str = "cosine"
    optimizer: str = "adamw"
    adam_beta2: float = 0.95
    dropout: float | None = None  # default: the base model's own (0.1 from scratch)
    max_grad_norm: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    prefix_tokens: int = 16
    merge: bool = False
    chat_template: str = "chat"  # the template whose [chat] table renders chat transcripts
    sample_prompts: list[str] = field(default_factory=list)
    eval_examples: int = 50  # prompt/completion test examples generated for BLEU/ROUGE
    keep_checkpoints: int = 2
    save_dtype: str = "float32"
    resume: bool = False
    overwrite: bool = False
    dry_run: bool = False
    command: str = ""

    def check(self) -> None:
        """Reject impossible combinations with one line naming the flag and the fix."""
        if self.method not in METHODS:
            raise InputError(f"--method must be one of {', '.join(METHODS)}, not '{self.method}'")
        if self.from_scratch and self.method != "full":
            raise InputError("--from-scratch trains every weight: drop --method lora/prefix")
        if self.from_scratch and self.model:
            raise InputError("--from-scratch builds a new model: drop --model")
        if self.merge and self.method != "lora":
            raise InputError("--merge only applies to --method lora")
        if self.schedule not in SCHEDULES:
            raise InputError(f"--schedule must be one of {', '.join(SCHEDULES)}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.optimizer == "muon" and self.method != "full":
            raise InputError("--optimizer muon trains full matrices: use it with --method full")
        if not 0 < self.adam_beta2 < 1:
            raise InputError(f"--adam-beta2 must be in (0, 1), got {self.adam_beta2}")
        if self.save_dtype not in SAVE_DTYPES:
            raise InputError(f"--save-dtype must be one of {', '.join(SAVE_DTYPES)}")
        if self.epochs is not None and self.max_steps is not None:
            raise InputError("give --epochs or --max-steps, not both")
        positive = {
            "--batch-size": self.batch_size,
            "--grad-accum": self.grad_accum,
            "--keep-checkpoints": self.keep_checkpoints,
            "--lora-r": self.lora_r,
            "--prefix-tokens": self.prefix_tokens,
        }
        optional = {
            "--max-steps": self.max_steps,
            "--epochs": self.epochs,
            "--block-size": self.block_size,
            "--eval-every": self.eval_every,
            "--save-every": self.save_every,
            "--threads": self.threads,
            "--lr": self.lr,
            "--vocab-size": self.vocab_size,
            "--n-positions": self.n_positions,
        }
        self._check_numbers()
        for flag, value in {**positive, **optional}.items():
            if value is not None and value <= 0:
                raise InputError(f"{flag} must be more than 0, got {value}")
        if self.block_size is not None and self.block_size < 2:
            raise InputError("--block-size must be at least 2 tokens")
        for flag, value in (
            ("--val-fraction", self.val_fraction),
            ("--test-fraction", self.test_fraction),
        ):
            if not 0 <= value < 0.5:
                raise InputError(f"{flag} must be in [0, 0.5), got {value}")
        if self.patience < 0:
            raise InputError("--patience must be 0 (off) or more")
        if self.sample_every is not None and self.sample_every < 0:
            raise InputError("--sample-every must be 0 (off) or more")
        if not 0 <= self.fim <= 1:
            raise InputError(f"--fim must be a fraction in [0, 1], got {self.fim}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise InputError("--dropout must be in [0, 1)")
        if not 0 <= self.lora_dropout < 1:
            raise InputError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
        if self.minutes <= 0:
            raise InputError(f"--minutes must be more than 0, got {self.minutes}")
        if self.from_scratch:
            from scribe.engine.finetune.scratch import blueprint_for

            blueprint_for(self.from_scratch, self.vocab_size, self.n_positions)  # a bad shape
        if self.patience and self.val_fraction == 0:
            raise InputError(
                "early stopping needs a validation split: set --val-fraction or --patience 0"
            )

    def _check_numbers(self) -> None:
        """Finite floats and integers in the range torch and the JSON card can hold."""
        floats = {
            "--epochs": self.epochs,
            "--lr": self.lr,
            "--val-fraction": self.val_fraction,
            "--test-fraction": self.test_fraction,
            "--weight-decay": self.weight_decay,
            "--warmup": self.warmup,
            "--dropout": self.dropout,
            "--max-grad-norm": self.max_grad_norm,
            "--lora-dropout": self.lora_dropout,
            "--fim": self.fim,
            "--minutes": self.minutes,
        }
        for flag, value in floats.items():
            if value is not None and not math.isfinite(value):
                raise InputError(f"{flag} must be a finite number, got {value}")
        ints = {
            "--seed": self.seed,
            "--max-steps": self.max_steps,
            "--batch-size": self.batch_size,
            "--grad-accum": self.grad_accum,
            "--block-size": self.block_size,
            "--eval-every": self.eval_every,
            "--save-every": self.save_every,
            "--sample-every": self.sample_every,
            "--threads": self.threads,
            "--vocab-size": self.vocab_size,
            "--n-positions": self.n_positions,
            "--patience": self.patience,
            "--lora-r": self.lora_r,
            "--lora-alpha": self.lora_alpha,
            "--prefix-tokens": self.prefix_tokens,
            "--keep-checkpoints": self.keep_checkpoints,
            "--eval-examples": self.eval_examples,
        }
        for flag, value in ints.items():
            if value is not None and not -MAX_INT <= value <= MAX_INT:
                raise InputError(f"{flag} {value} is out of range (at most {MAX_INT})")
        if self.seed < 0:
            raise InputError(f"--seed must be 0 or more, got {self.seed}")
        if self.epochs is not None and self.epochs > 10_000:
            raise InputError(f"--epochs {self.epochs} is more than 10000; use fewer")
        if self.weight_decay < 0 or self.max_grad_norm < 0 or self.warmup < 0:
            raise InputError("--weight-decay, --max-grad-norm and --warmup must be 0 or more")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: Path) -> FinetuneSettings:
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as err:
            raise InputError(
                f"{path}: unreadable run settings ({err}); start again with --overwrite"
            ) from None
