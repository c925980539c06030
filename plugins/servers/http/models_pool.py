"""The models the server holds: every local model by name, loaded on demand, a bounded number
kept (least recently used unloaded first), and Ollama's `keep_alive` honoured.

A request names a model as `scribe models` lists it ("default", a name under the data dir's
models/, a cached hub id), with or without Ollama's ":latest"; an empty name is the server's own
`--model`. A name that is not listed is a 404; the server never opens a path a request gives.
Everything here runs on the event loop; loading runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.engine.errors import ScribeError
from scribe.plugins.servers.http.errors import HttpError, model_not_found
from scribe.plugins.servers.http.queue import Worker

log = logging.getLogger("scribe.plugins.http")

LISTING_TTL_S = 5.0  # `scribe models` reads files; a burst of requests reads them once
REAP_EVERY_S = 1.0


@dataclass
class Entry:
    """One loaded model and everything served from it."""

    name: str
    spec: str | None  # what `models.load` was given
    path: Path
    generator: Any  # scribe.engine.runtime.generation.Generator
    worker: Worker
    fim: Any  # completion_prompt.FimFormat, when the card declares fill-in-the-middle
    chat_format: Any  # prompting.chat_format.ChatFormat
    card: dict[str, Any]
    parameters: int
    size_bytes: int
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    expires_at: float | None = None  # monotonic; None: kept until the LRU bound needs room
    windows: dict[str, Any] = field(default_factory=dict)  # infill slot -> PromptWindow

    @property
    def n_positions(self) -> int:
        return int(self.generator.n_positions)


@dataclass(frozen=True)
class Listed:
    name: str
    spec: str | None  # what `models.load` is given
    path: Path
    parameters: int = 0
    size_bytes: int = 0
    context: int | None = None
    problem: str | None = None


def strip_tag(name: str) -> str:
    return name[: -len(":latest")] if name.endswith(":latest") else name


class ModelPool:
    def __init__(
        self, default_spec: str | None, precision: str, max_loaded: int, max_queue: int
    ) -> None:
        self.default_spec = default_spec
        self.precision = precision
        self.max_loaded = max(1, max_loaded)
        self.max_queue = max_queue
        self.default_name = display_name(default_spec)
        self.state = "loading"  # the default model's: "loading", "ready" or "error"
        self.error = ""
        self.entries: dict[Path, Entry] = {}
        self._loading: dict[Path, asyncio.Future[Entry]] = {}
        self._listing: list[Listed] = []
        self._listed_at = -LISTING_TTL_S
        self._default_path: Path | None = None

    # -- names ---------------------------------------------------------------------------------
    async def listing(self, fresh: bool = False) -> list[Listed]:
        """What `scribe models` lists (broken folders included, with their problem), and the
        server's own model when it lives elsewhere."""
        if fresh or time.monotonic() - self._listed_at > LISTING_TTL_S:
            self._listing = await asyncio.to_thread(self._read_listing)
            self._listed_at = time.monotonic()
        return self._listing

    def _read_listing(self) -> list[Listed]:
        from scribe.engine.runtime.catalog import available_models, describe
        from scribe.engine.runtime.model_files import DEFAULT_MODEL_DIR, locate

        listed = []
        for info in available_models():
            spec = str(info.path) if info.path == DEFAULT_MODEL_DIR else info.name
            listed.append(
                Listed(
                    info.name,
                    spec,
                    info.path,
                    info.parameters,
                    info.size_bytes,
                    info.context,
                    info.problem,
                )
            )
        try:
            default = self._default_path or locate(self.default_spec)
        except ScribeError:  # its folder went away while the server ran: list the rest
            return listed
        if all(item.path != default for item in listed):
            info = describe(self.default_name, "server", default)
            if info is not None:
                listed.insert(
                    0,
                    Listed(
                        self.default_name,
                        self.default_spec,
                        default,
                        info.parameters,
                        info.size_bytes,
                        info.context,
                    ),
                )
        return listed

    async def resolve(self, requested: str | None) -> tuple[str, str | None, Path]:
        """(name, spec, folder) for a request's model; 404 for a name not listed."""
        name = strip_tag((requested or "").strip())
        if not name or name in (self.default_name, self.default_spec):
            try:
                path = self._default_path or await asyncio.to_thread(self._locate_default)
            except ScribeError as err:  # its folder went away while the server ran
                raise model_not_found(self.default_name, str(err)) from None
            return self.default_name, self.default_spec, path
        for entry in self.entries.values():
            if entry.name == name:
                return entry.name, entry.spec, entry.path
        for fresh in (False, True):
            for item in await self.listing(fresh):
                if item.name == name:
                    if item.problem:
                        raise model_not_found(requested or "", item.problem)
                    return item.name, item.spec, item.path
        raise model_not_found(requested or "")

    def _locate_default(self) -> Path:
        from scribe.engine.runtime.model_files import locate

        self._default_path = locate(self.default_spec)
        return self._default_path

    # -- loading -------------------------------------------------------------------------------
    async def get(self, requested: str | None) -> Entry:
        """The loaded model a request names, loading it first when needed."""
        name, spec, path = await self.resolve(requested)
        entry = self.entries.get(path)
        if entry is None:
            entry = await self._load(name, spec, path)
        entry.last_used = time.monotonic()
        return entry

    async def load_default(self) -> None:
        """At start: load and warm the server's own model (llama.cpp's /health says 503 until
        then)."""
        try:
            await self.get(None)
        except Exception as err:  # shown by /health and the status, and in the log
            self.state, self.error = (
                "error",
                str(err) if isinstance(err, HttpError) else (f"{type(err).__name__}: {err}"),
            )
            log.error("the default model failed to load: %s", self.error)
            return
        self.state = "ready"

    async def _load(self, name: str, spec: str | None, path: Path) -> Entry:
        future = self._loading.get(path)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._loading[path] = future
            try:
                entry = await asyncio.to_thread(self._load_blocking, name, spec, path)
            except asyncio.CancelledError:
                self._loading.pop(path, None)
                future.cancel()
                raise
            except Exception as err:
                self._loading.pop(path, None)
                failure = _load_failure(name, err)
                future.set_exception(failure)
                future.exception()  # retrieved: no "never retrieved" warning for lone loads
                raise failure from None
            self._loading.pop(path, None)
            self.entries[path] = entry
            future.set_result(entry)
            self.trim()
            return entry
        return await asyncio.shield(future)

    def _load_blocking(self, name: str, spec: str | None, path: Path) -> Entry:
        from scribe.engine.prompting.chat_format import ChatFormat
        from scribe.engine.runtime.generation import Generator
        from scribe.engine.runtime.models import load
        from scribe.plugins.servers.completion_prompt import FimFormat

        started = time.perf_counter()
        loaded = load(spec, precision=self.precision)
        generator = Generator(loaded)
        generator.warm()
        card = loaded.card.as_dict()
        weights = loaded.weights
        parameters = weights.parameters() if weights is not None else 0
        log.info(
            "loaded %s (%s) in %.1fs", name, generator.precision, time.perf_counter() - started
        )
        return Entry(
            name=name,
            spec=spec,
            path=path,
            generator=generator,
            worker=Worker(name, generator, self.max_queue),
            fim=FimFormat.from_card(loaded.card, generator.encode),
            chat_format=ChatFormat.for_model(card),
            card=card,
            parameters=parameters,
            size_bytes=_folder_size(path),
        )

    # -- keeping and unloading -------------------------------------------------------------------
    def keep(self, entry: Entry, keep_alive: float | None) -> None:
        """After a request: Ollama's keep_alive in seconds (negative: for ever; 0: unload now;
        None: as it was)."""
        entry.last_used = time.monotonic()
        if keep_alive is not None:
            entry.expires_at = None if keep_alive < 0 else time.monotonic() + keep_alive
        if keep_alive == 0:
            self.reap()

    def unload(self, entry: Entry) -> None:
        if self.entries.get(entry.path) is entry:
            del self.entries[entry.path]
            entry.worker.close()
            log.info("unloaded %s", entry.name)

    def reap(self) -> None:
        """Unload idle models whose keep_alive ran out, then the least recently used idle ones
        while more than max_loaded are held."""
        now = time.monotonic()
        for entry in list(self.entries.values()):
            if entry.expires_at is not None and entry.expires_at <= now and entry.worker.idle:
                self.unload(entry)
        self.trim()

    def trim(self) -> None:
        idle = sorted(
            (e for e in self.entries.values() if e.worker.idle), key=lambda e: e.last_used
        )
        while len(self.entries) > self.max_loaded and idle:
            self.unload(idle.pop(0))

    async def reaper(self) -> None:
        while True:
            await asyncio.sleep(REAP_EVERY_S)
            self.reap()

    def close(self) -> None:
        for entry in list(self.entries.values()):
            entry.worker.cancel_all()
            entry.worker.close()

    def status(self) -> dict[str, Any]:
        return {
            "default_model": self.default_name,
            "state": self.state,
            **({"error": self.error} if self.error else {}),
            "max_loaded": self.max_loaded,
            "models": {
                entry.name: {
                    "precision": getattr(entry.generator, "precision", ""),
                    "fim": entry.fim is not None,
                    "context": entry.n_positions,
                    **entry.worker.status(),
                }
                for entry in self.entries.values()
            },
        }


def display_name(spec: str | None) -> str:
    """The name the server's own model is listed by."""
    if spec is None:
        from scribe.engine.config import load_config

        return load_config().default_model or "default"
    path = Path(spec).expanduser()
    return path.name if path.is_dir() else spec


def _folder_size(path: Path) -> int:
    try:
        return sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    except OSError:
        return 0


def _load_failure(name: str, err: BaseException) -> HttpError:
    if isinstance(err, HttpError):
        return err
    if isinstance(err, ScribeError):
        return model_not_found(name, str(err))
    log.error("loading %s failed", name, exc_info=err)
    return HttpError(500, f"model '{name}' failed to load; the server log has the details")
