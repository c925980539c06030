"""Generation options shared by every door (chat, complete, editor, templates).

Every number is checked where it enters (a flag, a template's [options], /set): a NaN or an
infinity would reach the sampler as a probability of NaN, and a seed outside torch's 64-bit range
would overflow inside torch, both as tracebacks far from the value that caused them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from scribe.engine import paths
from scribe.engine.config import load_config
from scribe.engine.errors import ConfigError, InputError

# Far more than any GPT-2 window (generation stops at the window anyway): a bigger number is a typo.
MAX_NEW_TOKENS = 1_000_000
# torch.Generator.manual_seed takes 64 bits; scribe's seeds are the unsigned half of that range.
SEED_MAX = 2**64 - 1
INT_FIELDS = ("max_new_tokens", "top_k", "seed", "repetition_window", "dry_allowed_length")


def max_tokens_in_bounds(count: float, limit: int | None = MAX_NEW_TOKENS) -> bool:
    """Whether `count` may be a reply's length in tokens: from 1 to `limit` (None: no upper
    bound). The one rule for max tokens; each door passes its own limit and words its own error."""
    return count >= 1 and (limit is None or count <= limit)


# Each option's allowed range: (test, what the error says).
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "max_new_tokens": (max_tokens_in_bounds, f"must be from 1 to {MAX_NEW_TOKENS}"),
    # Past these bounds the scaled logits overflow and sampling sees NaN probabilities.
    "temperature": (lambda v: 0 <= v <= 100, "must be from 0 (greedy) to 100"),
    "top_k": (lambda v: v >= 0, "must be 0 (off) or more"),
    "top_p": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "repetition_penalty": (lambda v: 0.01 <= v <= 100, "must be from 0.01 to 100 (1.0 is off)"),
    "repetition_window": (lambda v: v >= 0, "must be 0 (the whole text) or more tokens"),
    "min_p": (lambda v: 0 <= v < 1, "must be in [0, 1) (0 is off)"),
    "dry_multiplier": (lambda v: v >= 0, "must be 0 (off) or more"),
    "dry_base": (lambda v: 1 < v <= 8, "must be more than 1 and at most 8"),
    "dry_allowed_length": (lambda v: v >= 1, "must be 1 or more tokens"),
    "seed": (lambda v: 0 <= v <= SEED_MAX, f"must be from 0 to {SEED_MAX} (2**64 - 1)"),
}


def range_problem(key: str, value: float | None) -> str | None:
    """Why `value` is out of range for option `key` (a field name), or None when it is fine."""
    if value is None:
        return None  # only seed may be None (no seed)
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    test, reason = RANGES[key]
    return None if test(value) else reason


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 128
    temperature: float = 0.7  # 0 means greedy
    top_k: int = 40  # 0 disables
    top_p: float = 0.95  # 1.0 disables
    repetition_penalty: float = 1.0  # 1.0 disables; same formula as transformers
    # The repetition guards look back this many tokens (prompt and reply); 0: the whole text.
    repetition_window: int = 512
    min_p: float = 0.05  # drop tokens less than min_p times as likely as the best; 0 disables
    # The loop guard (DRY): a token that would extend a repeat of the reply's own text by k
    # tokens loses dry_multiplier * dry_base ** (k - dry_allowed_length) from its logit.
    # 0 disables; it applies to greedy decoding too.
    # bench/loops.py on the embedded model: greedy loops 10/45 at 1.5, 2/45 here.
    dry_multiplier: float = 2.5
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int | None = None
    # Drop the reply's leading whitespace before stop sequences apply: a template's answer
    # that starts with "\n\n" would otherwise meet its own stop and come back empty.
    lstrip: bool = False
    # End-of-text is not sampled before this many new tokens (a retried answer must say something).
    min_new_tokens: int = 0

    def __post_init__(self) -> None:
        for key in SETTABLE:
            problem = range_problem(key, getattr(self, key))
            if problem:
                name = "max tokens" if key == "max_new_tokens" else key
                raise InputError(f"{name} {problem}")
        if any(not s for s in self.stop):
            raise InputError("a stop sequence cannot be empty")

    def updated(self, **changes: Any) -> GenerationOptions:
        """A copy with the given fields changed; None values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# Names a user may give (templates, /set, -p): the field name or a short alias.
ALIASES = {"max_tokens": "max_new_tokens"}
SETTABLE = (
    "max_new_tokens",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repetition_penalty",
    "repetition_window",
    "dry_multiplier",
    "dry_base",
    "dry_allowed_length",
    "seed",
)


def typed_value(key: str, value: Any) -> int | float:
    """`value` (text, or a TOML/JSON value) as option `key`'s type, in range; a ValueError says
    why not. Booleans are refused (TOML's `true` is no temperature), as are fractional counts."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"needs a number, got {value!r}")
    if key in INT_FIELDS:
        typed: int | float = _whole_number(value)
    else:
        try:
            typed = float(value)
        except ValueError:
            raise ValueError(f"needs a number, got {value!r}") from None
    problem = range_problem(key, typed)
    if problem:
        raise ValueError(f"{problem}; got {value!r}")
    return typed


def _whole_number(value: int | float | str) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"needs a whole number, got {value!r}")
        return int(value)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"needs a whole number, got {value!r}") from None


def parse_option(name: str, value: Any) -> tuple[str, Any]:
    """Validate one option given as text or a TOML value; returns (field name, typed value)."""
    key = ALIASES.get(name, name)
    if key not in SETTABLE:
        accepted = ", ".join(["max_tokens", *SETTABLE[1:]])
        raise InputError(f"unknown option '{name}'; accepted: {accepted}")
    try:
        return key, typed_value(key, value)
    except ValueError as err:
        raise InputError(f"option {name} {err}") from None


def configured_options(base: GenerationOptions) -> GenerationOptions:
    """`base` with config.toml's [options] applied; a bad value is one ConfigError naming the
    file and the option."""
    changes = {}
    for name, value in load_config().options.items():
        try:
            key, typed = parse_option(name, value)
        except InputError as err:
            raise ConfigError(f"{paths.config_file()}: [options] {err}") from None
        changes[key] = typed
    return base.updated(**changes)
