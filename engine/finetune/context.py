"""What every stage of one run shares: its settings, folders, processes and event sink."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from scribe.engine.errors import InputError
from scribe.engine.files.atomic import atomic_write
from scribe.engine.finetune import distributed, outdir
from scribe.engine.finetune.events import EventSink, ignore
from scribe.engine.finetune.settings import RESUME_MAY_CHANGE, FinetuneSettings

T = TypeVar("T")


@dataclass
class RunContext:
    settings: FinetuneSettings  # on --resume, the saved ones (with RESUME_MAY_CHANGE applied)
    emit: EventSink  # silent on every rank but 0
    dist: distributed.Dist  # this process's rank, device and process group
    out: Path
    run_dir: Path

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
    """Check --out, and on --resume continue with the settings the run started with."""
    out = outdir.out_folder(settings.out)
    run_dir = outdir.run_dir(out)
    outdir.check_out(out, settings.resume, settings.overwrite)
    if settings.resume:
        saved = FinetuneSettings.load(run_dir / outdir.SETTINGS)
        for key in RESUME_MAY_CHANGE:
            value = getattr(settings, key)
            if key != "threads" or value is not None:
                setattr(saved, key, value)
        settings = saved
    distributed.barrier(d)  # every rank checked --out before rank 0 creates it
    return RunContext(settings, emit if d.main else ignore, d, out, run_dir)


def create_run(ctx: RunContext) -> None:
    """The output folder with its run folder and the settings a --resume reads back."""
    outdir.create_out(ctx.out, ctx.settings.overwrite)
    atomic_write(ctx.run_dir / outdir.SETTINGS, ctx.settings.to_json())
