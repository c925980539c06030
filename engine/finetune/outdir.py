"""The output folder: where it is, and refusing to clobber or half-write one.

Layout of `models/NAME/` while training: only `run/` (settings, token cache, checkpoints,
metrics.jsonl). Model files appear at the very end, config last, so an unfinished run never
looks like a model. `--overwrite` moves the model it replaces to `.NAME.replaced` beside it,
puts it back when the new run fails before its first checkpoint, and deletes it only once the
new model is in place.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from scribe.engine import paths
from scribe.engine.errors import InputError
from scribe.engine.runtime.model_files import DEFAULT_NAME

RUN = "run"
SETTINGS = "settings.json"
NAME_ROOM = 10  # bytes a name needs beyond --out's for `.NAME.lock` and `.NAME.replaced`
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


def is_plain_name(spec: str) -> bool:
    return not (os.sep in spec or spec.startswith((".", "~")) or (os.altsep and os.altsep in spec))


def out_folder(spec: str) -> Path:
    """--out NAME goes under the data dir's models/; anything path-like is used as given."""
    if not is_plain_name(spec):
        out = paths.user_path(spec, "--out")
    elif not NAME.match(spec):
        raise InputError(f"--out '{spec}': use a plain name (letters, digits, - _ .) or a path")
    else:
        out = paths.models_dir() / spec
    _check_length(out)
    return out


def _check_length(out: Path) -> None:
    """A name the file system cannot hold is one line before anything is written (the names
    beside the folder, `.NAME.lock` and `.NAME.replaced`, need a few bytes more)."""
    folder = next((p for p in out.absolute().parents if p.is_dir()), Path("/"))
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    room = limit - NAME_ROOM
    if len(out.name.encode("utf-8", "surrogateescape")) > room:
        raise InputError(
            f"--out {out.name[:40]}...: the name is longer than the {room} bytes this file "
            "system allows; choose a shorter --out"
        )


def check_base(out: Path, settings_out: str, model: str | None) -> None:
    """Refuse an --out that is the base model itself (training would replace the model it starts
    from), or a plain name that would hide the base or a downloaded hub model of that name
    (a folder under models/ wins over the hub id everywhere)."""
    if settings_out == DEFAULT_NAME:
        raise InputError(
            f"--out {DEFAULT_NAME}: that name is the embedded model's, which a model saved under "
            "it would hide; choose another --out"
        )
    if model is None:
        return
    bases = [paths.user_path(model, "--model"), paths.models_dir() / model]
    same = any(_same(base, out) for base in bases)
    if same or settings_out == model:
        raise InputError(
            f"--out {settings_out} is the base model --model {model}; a run never replaces the "
            "model it starts from: choose another --out"
        )
    if is_plain_name(settings_out) and not out.exists() and _cached_hub_model(settings_out):
        raise InputError(
            f"--out {settings_out}: a downloaded hub model has that name, and a model saved as "
            f"{settings_out} would hide it everywhere; choose another --out"
        )


def _same(a: Path, b: Path) -> bool:
    try:
        return a.is_dir() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _cached_hub_model(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001 - not a valid repo id: no hub model of that name
        return False


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
    if out.is_symlink() and not out.exists():
        raise InputError(f"--out {out} is a link to nothing; remove it or choose another --out")
    if out.is_symlink() and out.is_dir() and any(out.iterdir()):
        raise InputError(
            f"--out {out} is a symbolic link to {out.resolve()}; a run never replaces a folder "
            "through a link: give that folder itself, or choose another --out"
        )
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


def replaced(out: Path) -> Path:
    """Where --overwrite keeps the model it replaces until the new one is in place."""
    return out.with_name(f".{out.name}.replaced")


def create_out(out: Path, overwrite: bool) -> None:
    if out.is_dir() and (overwrite or restartable(out)):
        refuse_foreign(out)  # checked again right before moving anything
        if is_finished(out):  # a model: kept beside until the new one is saved
            shutil.rmtree(replaced(out), ignore_errors=True)
            out.rename(replaced(out))
        else:  # an unfinished run (a model it replaces, if any, is still beside it)
            shutil.rmtree(out)
    run_dir(out).mkdir(parents=True, exist_ok=True)
    # A model learned from the user's own text is private, like their conversations.
    out.chmod(0o700)


def restore_replaced(out: Path) -> bool:
    """After a run failed before its first checkpoint (nothing to resume): the model it was
    replacing goes back in place. True when one did."""
    from scribe.engine.finetune.checkpoints import list_checkpoints

    backup = replaced(out)
    if not backup.is_dir() or is_finished(out) or list_checkpoints(run_dir(out)):
        return False
    shutil.rmtree(out, ignore_errors=True)
    backup.rename(out)
    return True


def drop_replaced(out: Path) -> None:
    """The new model is in place: the one it replaced goes."""
    shutil.rmtree(replaced(out), ignore_errors=True)
