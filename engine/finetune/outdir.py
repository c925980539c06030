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
NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")
MODEL_MARKERS = ("config.json", "adapter_config.json")


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
        if not overwrite:
            raise InputError(
                f"--out {out} already exists; pass --resume to continue its run, --overwrite to "
                "replace it, or choose another --out"
            )
        looks_ours = run_dir(out).is_dir() or is_finished(out) or (out / "scribe.json").exists()
        if not looks_ours:
            raise InputError(
                f"--out {out}: refusing to overwrite a folder that is not a scribe model or run"
            )


def create_out(out: Path, overwrite: bool) -> None:
    if overwrite and out.is_dir():
        shutil.rmtree(out)
    run_dir(out).mkdir(parents=True, exist_ok=True)
