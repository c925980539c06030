"""The output folder: where it is, and refusing to clobber or half-write one.

Layout of `models/NAME/` while training: only `run/` (settings, token cache, checkpoints,
metrics.jsonl). Model files appear at the very end, config last, so an unfinished run never
looks like a model.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from scribe.engine import paths
from scribe.engine.errors import InputError

RUN = "run"
SETTINGS = "settings.json"
STAGING = ".staging"  # the finished files, before they are moved into the folder
NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")
MODEL_MARKERS = ("config.json", "adapter_config.json")
# Everything scribe itself writes into an output folder; --overwrite deletes nothing else.
OWN_FILES = {
    RUN,
    STAGING,
    "scribe.json",
    "report.md",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "README.md",  # peft writes a model card beside an adapter
}


def out_folder(spec: str) -> Path:
    """--out NAME goes under the data dir's models/; anything path-like is used as given."""
    if os.sep in spec or spec.startswith((".", "~")) or (os.altsep and os.altsep in spec):
        return Path(spec).expanduser()
    if not NAME.match(spec):
        raise InputError(f"--out '{spec}': use a plain name (letters, digits, - _ .) or a path")
    return paths.models_dir() / spec


def run_dir(out: Path) -> Path:
    return out / RUN


def is_finished(out: Path) -> bool:
    return any((out / marker).exists() for marker in MODEL_MARKERS)


def check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Validate --out against --resume/--overwrite without changing anything."""
    if resume:
        if not (run_dir(out) / SETTINGS).exists():
            raise InputError(f"{out}: no unfinished run to resume; start it without --resume")
        if is_finished(out):
            raise InputError(f"{out}: this run already finished; nothing to resume")
        return
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if restartable(out):
            return
        if not overwrite:
            raise InputError(
                f"--out {out} already exists; pass --resume to continue its run, --overwrite to "
                "replace it, or choose another --out"
            )
        refuse_foreign(out)


def _is_scribe_file(entry: Path) -> bool:
    # The derived weights scribe caches beside a model (scribe-int8.safetensors, ...) too.
    return entry.name in OWN_FILES or (
        entry.name.startswith("scribe-") and entry.suffix == ".safetensors"
    )


def refuse_foreign(out: Path) -> None:
    """--overwrite replaces only a folder scribe wrote: its card says it is a scribe model (or it
    holds only an unfinished run), and nothing else is in it."""
    foreign = sorted(p.name for p in out.iterdir() if not _is_scribe_file(p))
    if foreign:
        raise InputError(
            f"--out {out}: refusing to overwrite: it holds {foreign[0]!r}, which scribe did not "
            "write; move it away or choose another --out"
        )
    card = out / "scribe.json"
    if card.exists() and not _is_scribe_card(card):
        raise InputError(
            f"--out {out}: refusing to overwrite: {card.name} is not a scribe model card; "
            "choose another --out"
        )
    if not card.exists() and not (run_dir(out) / SETTINGS).exists():
        raise InputError(
            f"--out {out}: refusing to overwrite a folder that is not a scribe model or run; "
            "choose another --out"
        )


def _is_scribe_card(card: Path) -> bool:
    import json

    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "base_model" in data and "method" in data


def restartable(out: Path) -> bool:
    """A run folder that never saved a checkpoint (a start that failed or was stopped early):
    starting again replaces it, so a failed start never blocks a retry."""
    from scribe.engine.finetune.checkpoints import list_checkpoints

    entries = {p.name for p in out.iterdir()} if out.is_dir() else set()
    return (
        entries == {RUN}
        and (run_dir(out) / SETTINGS).exists()
        and not list_checkpoints(run_dir(out))
    )


def create_out(out: Path, overwrite: bool) -> None:
    if out.is_dir() and (overwrite or restartable(out)):
        refuse_foreign(out)  # checked again right before deleting anything
        shutil.rmtree(out)
    run_dir(out).mkdir(parents=True, exist_ok=True)
    # A model learned from the user's own text is private, like their conversations.
    out.chmod(0o700)
