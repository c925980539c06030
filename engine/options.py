"""Generation options shared by every door (chat, complete, editor, templates)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from scribe.engine.errors import InputError


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 128
    temperature: float = 0.7  # 0 means greedy
    top_k: int = 40  # 0 disables
    top_p: float = 0.95  # 1.0 disables
    repetition_penalty: float = 1.0  # 1.0 disables; same formula as transformers
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InputError("max tokens must be at least 1")
        if self.temperature < 0:
            raise InputError("temperature must be 0 (greedy) or more")
        if self.top_k < 0:
            raise InputError("top_k must be 0 (off) or more")
        if not 0 < self.top_p <= 1:
            raise InputError("top_p must be in (0, 1]")
        if self.repetition_penalty <= 0:
            raise InputError("repetition_penalty must be more than 0 (1.0 is off)")
        if any(not s for s in self.stop):
            raise InputError("a stop sequence cannot be empty")

    def updated(self, **changes: Any) -> GenerationOptions:
        """A copy with the given fields changed; None values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


OPTION_TYPES: dict[str, type] = {f.name: f.type for f in fields(GenerationOptions)}  # type: ignore[misc]

# Names a user may give (templates, /set, -p): the field name or a short alias.
ALIASES = {"max_tokens": "max_new_tokens"}
SETTABLE = ("max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty", "seed")


def parse_option(name: str, value: Any) -> tuple[str, Any]:
    """Validate one option given as text or a TOML value; returns (field name, typed value)."""
    key = ALIASES.get(name, name)
    if key not in SETTABLE:
        accepted = ", ".join(["max_tokens", *SETTABLE[1:]])
        raise InputError(f"unknown option '{name}'; accepted: {accepted}")
    caster = int if key in ("max_new_tokens", "top_k", "seed") else float
    try:
        typed = caster(value)
    except (TypeError, ValueError):
        raise InputError(f"option {name} needs a {caster.__name__}, got {value!r}") from None
    GenerationOptions().updated(**{key: typed})  # validates the range
    return key, typed
