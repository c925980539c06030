"""What every stage of one run shares: its settings, folders, processes and event sink."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import TypeVar

from scribe.engine.errors import InputError
from scribe.engine.files.atomic import atomic_write
from scribe.engine.finetune import distributed, outdir
from scribe.engine.finetune.events import EventSink, ignore
from scribe.engine.finetune.lock import RunLock
from scribe.engine.finetune.settings import RESUME_MAY_CHANGE, FinetuneSettings

T = TypeVar("T")


@dataclass
class RunContext:
    settings: FinetuneSettings  # on --resume, the saved ones (with RESUME_MAY_CHANGE applied)
    emit: EventSink  # silent on every rank but 0
    dist: distributed.Dist  # this process's rank, device and process group
    out: Path
    run_dir: Path
    lock: RunLock | None = None  # held by rank 0 of a run that writes, until it ends
    step_seconds: float | None = None  # one training micro-step, as planning timed it here

    @property
    def writes(self) -> bool:
        return not self.settings.dry_run  # a dry run leaves no trace on disk

    def on_main(self, work: Callable[[], T]) -> T | None:
        """Run `work()` on rank 0 only (None elsewhere); an error there is raised on every rank."""
        error, value = None, None
        if self.dist.main:
            try:
                value = work()
            except InputError as err:
                error = str(err)
        error = distributed.share(self.dist, error)
        if error:
            raise InputError(error)
        distributed.barrier(self.dist)
        return value


def open_run(settings: FinetuneSettings, emit: EventSink, d: distributed.Dist) -> RunContext:
    """Lock and check --out, and on --resume continue with the settings the run started with."""
    out = outdir.out_folder(settings.out)
    run_dir = outdir.run_dir(out)
    if not settings.resume:
        outdir.check_base(out, settings.out, settings.model)
    lock = RunLock.acquire(out) if d.main and not settings.dry_run else None
    try:
        outdir.check_out(out, settings.resume, settings.overwrite)
        if settings.resume:
            saved = FinetuneSettings.load(run_dir / outdir.SETTINGS)
            refuse_changes(settings, saved)
            for key in RESUME_MAY_CHANGE:
                value = getattr(settings, key)
                if key != "threads" or value is not None:
                    setattr(saved, key, value)
            settings = saved
        distributed.barrier(d)  # every rank checked --out before rank 0 creates it
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return RunContext(settings, emit if d.main else ignore, d, out, run_dir, lock)


def refuse_changes(given: FinetuneSettings, saved: FinetuneSettings) -> None:
    """--resume continues the run as it started: a flag given with a value other than the
    run's (or other DATA) is refused with the list of what differs, never silently ignored.
    A flag left at its default counts as not given."""
    typed, given = given, saved_settings(given)
    changed = []
    if given.data and given.data != absolute_data(saved.data):
        changed.append(f"DATA {' '.join(typed.data)} (run: {' '.join(saved.data)})")
    for spec in fields(FinetuneSettings):
        name = spec.name
        if name in (*RESUME_MAY_CHANGE, "data", "out", "command"):
            continue
        default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
        value, before = getattr(given, name), getattr(saved, name)
        if value != default and value != before:
            was = "its default" if before is None else before
            changed.append(f"--{name.replace('_', '-')} {getattr(typed, name)} (run: {was})")
    if changed:
        raise InputError(
            f"--resume continues the run with the settings it started with, but "
            f"{'; '.join(changed)} differ; drop them to resume, or start a new run with "
            "--overwrite"
        )


def absolute_data(specs: list[str]) -> list[str]:
    """DATA as absolute paths, so a run resumes from any folder."""
    return [str(Path(spec).expanduser().absolute()) for spec in specs]


def saved_settings(settings: FinetuneSettings) -> FinetuneSettings:
    """The settings as the run folder keeps them: relative paths (DATA, a --model folder) made
    absolute, so `--resume` works from another folder."""
    model = settings.model
    if model is not None and Path(model).expanduser().is_dir():  # resolve's first choice
        model = str(Path(model).expanduser().absolute())
    return replace(settings, data=absolute_data(settings.data), model=model)


def create_run(ctx: RunContext) -> None:
    """The output folder with its run folder and the settings a --resume reads back."""
    outdir.create_out(ctx.out, ctx.settings.overwrite)
    atomic_write(ctx.run_dir / outdir.SETTINGS, saved_settings(ctx.settings).to_json())
