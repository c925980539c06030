"""One fine-tuning run from start to finish: data, model, before-evaluation, training,
after-evaluation, model folder with card and report. See __init__.py."""

from __future__ import annotations

import errno
import json
import math
import shutil
import signal
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from scribe.engine.errors import InputError
from scribe.engine.finetune import checkpoints as ckpt
from scribe.engine.finetune import defaults, distributed, fim, hardware, outdir
from scribe.engine.finetune.data import Document, find_files, read_documents
from scribe.engine.finetune.events import DataReady, EventSink, Stage, TrainStart, ignore
from scribe.engine.finetune.settings import RESUME_MAY_CHANGE, FinetuneSettings
from scribe.engine.finetune.splits import SPLITS, Split, split_documents
from scribe.engine.finetune.tokens import (
    Blocks,
    TokenSplit,
    cache_key,
    load_cache,
    pack,
    save_cache,
    tokenize_split,
)
from scribe.engine.finetune.trainer import Plan, Trainer, TrainOutcome
from scribe.engine.prompting.chat_format import ChatFormat

DEFAULT_BLOCK = 512
SCRATCH_DROPOUT = 0.1
EXAMPLE_CHARS = 800


@dataclass
class FinetuneResult:
    out: Path
    settings: FinetuneSettings
    summary: dict[str, Any]
    plan: dict[str, Any] = field(default_factory=dict)
    example: str = ""  # one rendered training document, context-only text between ⟦ ⟧
    dry_run: bool = False
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)
    samples_before: list[str] = field(default_factory=list)
    samples_after: list[str] = field(default_factory=list)
    outcome: TrainOutcome | None = None
    card: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None


def run_finetune(settings: FinetuneSettings, on_event: EventSink | None = None) -> FinetuneResult:
    emit = on_event or ignore
    settings.check()
    d = distributed.setup()
    try:
        return _Run(settings, emit, d).go()
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise
        # Checkpoints are written atomically, so the last complete one is intact.
        raise InputError(
            f"cannot write {err.filename or 'the run folder'}: {err.strerror}; free space (or "
            "fix the permissions) and continue with the same command plus --resume"
        ) from None
    finally:
        distributed.teardown(d)


class _Run:
    def __init__(self, settings: FinetuneSettings, emit: EventSink, d: distributed.Dist) -> None:
        self.emit = emit if d.main else ignore
        self.d = d
        self.out = outdir.out_folder(settings.out)
        self.run_dir = outdir.run_dir(self.out)
        outdir.check_out(self.out, settings.resume, settings.overwrite)
        if settings.resume:
            saved = FinetuneSettings.load(self.run_dir / outdir.SETTINGS)
            for key in RESUME_MAY_CHANGE:
                value = getattr(settings, key)
                if key != "threads" or value is not None:
                    setattr(saved, key, value)
            settings = saved
        self.settings = settings
        self.writes = not settings.dry_run  # a dry run leaves no trace on disk
        distributed.barrier(d)  # every rank checked --out before rank 0 creates it

    # -- helpers ------------------------------------------------------------------------------
    def on_main(self, work: Any) -> Any:
        """Run `work()` on rank 0 only; an error there is raised on every rank."""
        error, value = None, None
        if self.d.main:
            try:
                value = work()
            except InputError as err:
                error = str(err)
        error = distributed.share(self.d, error)
        if error:
            raise InputError(error)
        distributed.barrier(self.d)
        return value

    # -- the run ------------------------------------------------------------------------------
    def go(self) -> FinetuneResult:
        s = self.settings
        if self.writes and not s.resume:
            self.on_main(lambda: self._create())
        self.emit(Stage("reading data"))
        files = find_files(s.data)
        chat = ChatFormat.from_template(s.chat_template)
        docs = read_documents(files, chat)
        split = split_documents(docs, s.val_fraction, s.test_fraction, s.seed)
        tokenizer, loaded = self._tokenizer_and_base(split)
        n_positions = self._n_positions(loaded)
        block = s.block_size or min(n_positions, DEFAULT_BLOCK)
        if block > n_positions:
            raise InputError(
                f"--block-size {block} is more than the model's {n_positions} positions"
            )
        if s.fim:
            split = Split(
                fim.apply(split.train, s.fim, s.seed, block, tokenizer.eos_token),
                split.val,
                split.test,
            )
        tokens, summary = self._tokens(files, split, tokenizer, chat)
        eos = tokenizer.eos_token_id
        if eos is None:
            raise InputError(
                "the base model's tokenizer has no end-of-text token; pick another base"
            )
        blocks = {
            name: pack(tokens[name], block, eos, keep_tail=name != "train") for name in SPLITS
        }
        summary["block_size"] = block
        summary["blocks"] = {name: len(b) for name, b in blocks.items()}
        summary["truncated_examples"] = sum(b.truncated for b in blocks.values())
        if len(blocks["train"]) == 0:
            raise InputError(
                f"the training split has {int(len(tokens['train'].ids))} tokens, less than one "
                f"block of {block}; add data or lower --block-size"
            )
        plan = self._plan(len(blocks["train"]), self._base_parameters(loaded), blocks["train"])
        self.emit(DataReady(summary))
        result = FinetuneResult(self.out, s, summary, plan=asdict(plan), dry_run=s.dry_run)
        result.example = _example(split, tokenizer)
        if s.dry_run:
            result.plan["tokens"] = plan.total_steps * plan.micro_batch * plan.grad_accum * block
            result.plan["estimated_seconds"] = self._estimate(tokenizer, loaded, blocks, plan)
            return result
        return self._train(result, split, tokenizer, loaded, blocks, plan, chat)

    def _estimate(
        self, tokenizer: Any, loaded: Any, blocks: dict[str, Blocks], plan: Plan
    ) -> float:
        """Seconds the training steps would take here: one micro-step timed after a warm-up."""
        import time

        from scribe.engine.finetune.trainer import token_loss_sum

        model = self._model(tokenizer, loaded)[0].to(self.d.device).train()
        rows = blocks["train"].ids[: plan.micro_batch], blocks["train"].mask[: plan.micro_batch]
        ids, mask = (t.to(self.d.device) for t in rows)
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            token_loss_sum(model, ids, mask, plan.bf16).backward()
            timings.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
        return timings[-1] * plan.grad_accum * plan.total_steps

    def _create(self) -> None:
        outdir.create_out(self.out, self.settings.overwrite)
        (self.run_dir / outdir.SETTINGS).write_text(self.settings.to_json(), encoding="utf-8")

    def _tokenizer_and_base(self, split: Split) -> tuple[Any, Any]:
        s = self.settings
        if not s.from_scratch:
            from scribe.engine.runtime.models import load

            self.emit(Stage(f"loading {s.model or 'the default model'}"))
            loaded = load(s.model)
            if s.fim and not fim.has_tokens(loaded.tokenizer):
                if s.method != "full":
                    raise InputError(
                        f"--fim adds three tokens to {s.model or 'the base'}, and a {s.method} "
                        "adapter cannot carry new token rows; use --method full, or a base that "
                        "has the FIM tokens (scribe's default model does)"
                    )
                fim.add_tokens(loaded.tokenizer, loaded.model)
                self.emit(Stage("added the fill-in-the-middle tokens to the tokenizer"))
            return loaded.tokenizer, loaded
        from scribe.engine.finetune.scratch import parse_shape, train_tokenizer

        shape = parse_shape(s.from_scratch, s.vocab_size, s.n_positions)
        folder = self.run_dir / "tokenizer"
        specials = fim.TOKENS if s.fim else ()
        if not self.writes:
            self.emit(Stage(f"training a {shape.vocab_size}-token BPE tokenizer"))
            return train_tokenizer(split.train, shape.vocab_size, shape.n_positions, specials), None

        def make() -> None:
            if not (folder / "tokenizer.json").exists():
                self.emit(Stage(f"training a {shape.vocab_size}-token BPE tokenizer"))
                tok = train_tokenizer(split.train, shape.vocab_size, shape.n_positions, specials)
                staging = folder.with_name("tokenizer.tmp")
                shutil.rmtree(staging, ignore_errors=True)
                tok.save_pretrained(staging)
                staging.replace(folder)

        self.on_main(make)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder), None

    def _tokens(
        self, files: Any, split: Split, tokenizer: Any, chat: ChatFormat
    ) -> tuple[dict[str, TokenSplit], dict[str, Any]]:
        s = self.settings
        extra = {
            "seed": s.seed,
            "val": s.val_fraction,
            "test": s.test_fraction,
            "chat": chat.as_dict(),
            "vocab": len(tokenizer),
            "fim": s.fim,
            "block": s.block_size,
        }
        tok_file = (
            Path(tokenizer.name_or_path) / "tokenizer.json" if tokenizer.name_or_path else None
        )
        key = cache_key(files.files, tok_file, extra)

        def make() -> tuple[dict[str, TokenSplit], dict[str, Any]]:
            cached = load_cache(self.run_dir, key) if self.writes else None
            if cached is not None:
                return cached
            if s.resume and (self.run_dir / "tokens.json").exists():
                raise InputError(
                    "the data files changed since this run started, so it cannot resume exactly; "
                    "restore them or start again with --overwrite"
                )
            self.emit(Stage("tokenizing"))
            parts = tokenize_split(split, tokenizer)
            summary = _summary(files, split, parts)
            if self.writes:
                save_cache(self.run_dir, key, parts, summary)
            return parts, summary

        if not self.writes:
            return make()
        made = self.on_main(make)
        if made is None:
            made = load_cache(self.run_dir, key)
            assert made is not None
        return made

    def _n_positions(self, loaded: Any) -> int:
        if loaded is not None:
            return loaded.n_positions
        from scribe.engine.finetune.scratch import parse_shape

        s = self.settings
        return parse_shape(s.from_scratch or "", s.vocab_size, s.n_positions).n_positions

    def _base_parameters(self, loaded: Any) -> int:
        if loaded is not None:
            return sum(p.numel() for p in loaded.model.parameters())
        from scribe.engine.finetune.scratch import parse_shape

        s = self.settings
        return parse_shape(s.from_scratch or "", s.vocab_size, s.n_positions).parameters

    def _plan(self, train_blocks: int, params: int, train: Blocks) -> Plan:
        s, d = self.settings, self.d
        chosen = defaults.choose(
            params,
            s.method,
            bool(s.from_scratch),
            train.targets,
            s.lr,
            s.epochs if s.epochs is not None or s.max_steps is None else 1.0,
        )
        if chosen.note:
            self.emit(Stage(chosen.note))
        global_batch = s.batch_size * s.grad_accum * d.world
        if s.max_steps is not None:
            total = s.max_steps
        else:
            total = max(1, math.ceil(chosen.epochs * train_blocks / global_batch))
        every = s.eval_every or max(1, total // 10)
        warmup = int(s.warmup) if s.warmup >= 1 else max(1, round(s.warmup * total))
        return Plan(
            total_steps=total,
            micro_batch=s.batch_size,
            grad_accum=s.grad_accum,
            lr=chosen.lr,
            warmup_steps=min(warmup, total),
            weight_decay=s.weight_decay,
            max_grad_norm=s.max_grad_norm,
            eval_every=every,
            save_every=s.save_every or every,
            sample_every=every if s.sample_every is None else s.sample_every,
            patience=s.patience,
            keep_checkpoints=s.keep_checkpoints,
            seed=s.seed,
            bf16=hardware.bf16_native(d.device) if s.bf16 is None else s.bf16,
            compile=s.compile,
        )

    # -- training -----------------------------------------------------------------------------
    def _model(self, tokenizer: Any, loaded: Any) -> tuple[Any, Path | None, str]:
        s = self.settings
        from scribe.engine.finetune.methods import set_dropout

        if s.from_scratch:
            from scribe.engine.finetune.scratch import new_model, parse_shape

            shape = parse_shape(s.from_scratch, s.vocab_size, s.n_positions)
            dropout = SCRATCH_DROPOUT if s.dropout is None else s.dropout
            model = new_model(shape, tokenizer, dropout, s.seed)
            return model, None, f"scratch:{s.from_scratch}"
        model = loaded.model
        if s.dropout is not None:
            set_dropout(model, s.dropout)
        return model, loaded.path, s.model or loaded.name

    def _train(
        self,
        result: FinetuneResult,
        split: Split,
        tokenizer: Any,
        loaded: Any,
        blocks: dict[str, Blocks],
        plan: Plan,
        chat: ChatFormat,
    ) -> FinetuneResult:
        from scribe.engine.finetune.evaluation import default_prompts, evaluate, pair_examples
        from scribe.engine.finetune.methods import prepare

        s, d = self.settings, self.d
        base_model, base_path, base_name = self._model(tokenizer, loaded)
        base_model.to(d.device)
        shape = _shape(base_model)
        prompt_docs = split.test or split.val or split.train
        prompts = s.sample_prompts or default_prompts(prompt_docs)
        pairs = pair_examples(split.test, s.eval_examples)
        result.prompts = prompts

        # "Before" is the untouched base model (a LoRA or prefix wrapper is not added yet).
        before_file = self.run_dir / "before.json"
        if before_file.exists():
            before = json.loads(before_file.read_text(encoding="utf-8"))
        else:
            self.emit(Stage("evaluating the base model on the test split"))
            ev = evaluate(
                base_model, tokenizer, blocks["test"], prompts, pairs, s.batch_size, d, plan.bf16
            )
            before = {"metrics": ev.as_dict(), "samples": ev.samples}
            if d.main:
                with ckpt.atomic_path(before_file) as tmp:
                    tmp.write_text(json.dumps(before), encoding="utf-8")
        result.before, result.samples_before = before["metrics"], before["samples"]

        init_ids = blocks["train"].ids[0, : s.prefix_tokens].tolist()
        with torch.random.fork_rng():
            torch.manual_seed(s.seed)
            model = prepare(base_model, s.method, s, init_ids)
        model.to(d.device).train()
        threads = self._threads(model, blocks["train"], plan)

        def sampler(m: Any) -> list[tuple[str, str]]:
            from scribe.engine.finetune.evaluation import SAMPLE_TOKENS, EngineGenerator

            gen = EngineGenerator(m, tokenizer)
            with torch.no_grad():
                return [(p, gen.complete(p, SAMPLE_TOKENS)) for p in prompts]

        stop = _StopFlag()
        trainer = Trainer(
            model,
            plan,
            blocks["train"],
            blocks["val"],
            self.run_dir,
            d,
            self.emit,
            sampler=sampler if prompts else None,
            stop_requested=stop.is_set,
        )
        # Dropout draws from the global RNG: seed it, so a run is a function of its settings
        # (a resumed run restores the RNG state saved with its checkpoint instead).
        torch.manual_seed(s.seed * 1000 + d.rank)
        if s.resume and ckpt.list_checkpoints(self.run_dir):
            self._resume(trainer)
        block = blocks["train"].ids.shape[1]
        self.emit(
            TrainStart(
                plan.total_steps,
                trainer.state.step,
                trainer.global_batch * block,
                threads,
                plan.bf16,
                d.world,
                str(d.device),
            )
        )
        with stop.installed():
            outcome = trainer.run()
        result.outcome = outcome

        self.emit(Stage("evaluating the trained model on the test split"))
        after = evaluate(
            model, tokenizer, blocks["test"], prompts, pairs, s.batch_size, d, plan.bf16
        )
        result.after, result.samples_after = after.as_dict(), after.samples
        if d.main:
            self._write_output(
                result, model, tokenizer, base_path, base_name, shape, plan, threads, chat, split
            )
        distributed.barrier(d)
        return result

    def _resume(self, trainer: Trainer) -> None:
        """Continue from the newest intact checkpoint; a damaged one (a kill mid-write on a
        filesystem without atomic rename, a bad disk) is passed over and named."""
        damaged: list[str] = []
        for checkpoint in reversed(ckpt.list_checkpoints(self.run_dir)):
            try:
                trainer.resume(checkpoint)
            except Exception as err:  # noqa: BLE001 - any unreadable piece means "damaged"
                damaged.append(f"{checkpoint.name} ({type(err).__name__})")
                continue
            if damaged:
                gone = ", ".join(damaged)
                self.emit(Stage(f"checkpoint {gone} is damaged; resuming from an earlier one"))
            self.emit(Stage(f"resuming from step {trainer.state.step}"))
            return
        raise InputError(
            f"{ckpt.checkpoint_dir(self.run_dir)}: no intact checkpoint to resume from "
            f"({', '.join(damaged)}); start again with --overwrite"
        )

    def _threads(self, model: Any, train: Blocks, plan: Plan) -> int:
        s, d = self.settings, self.d
        saved = self.run_dir / "threads.json"
        if s.threads:
            threads = s.threads
        elif saved.exists():  # a resumed run keeps its thread count: same arithmetic, same result
            threads = int(json.loads(saved.read_text(encoding="utf-8"))["threads"])
        elif d.device.type != "cpu" or d.active:
            threads = hardware.usable_cores(d.local_world)
        else:
            from scribe.engine.finetune.trainer import token_loss_sum

            ids, mask = train.ids[: plan.micro_batch], train.mask[: plan.micro_batch]

            def trial() -> None:
                token_loss_sum(model, ids, mask, plan.bf16).backward()
                model.zero_grad(set_to_none=True)

            self.emit(Stage("measuring the fastest thread count"))
            threads = hardware.choose_threads(hardware.usable_cores(), trial)
        torch.set_num_threads(threads)
        if d.main:
            saved.write_text(json.dumps({"threads": threads}), encoding="utf-8")
        return threads

    def _write_output(
        self,
        result: FinetuneResult,
        model: Any,
        tokenizer: Any,
        base_path: Path | None,
        base_name: str,
        shape: dict[str, Any],
        plan: Plan,
        threads: int,
        chat: ChatFormat,
        split: Split,
    ) -> None:
        from scribe.engine.finetune import card as cards
        from scribe.engine.finetune import report
        from scribe.engine.finetune.methods import install, save_output

        s = self.settings
        outcome = result.outcome
        assert outcome is not None
        self.emit(Stage(f"saving the model to {self.out}"))
        staging = self.out / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        output = save_output(model, tokenizer, s.method, s.merge, base_path, staging, s.save_dtype)
        block = result.summary["block_size"]
        training = {
            "steps": outcome.steps,
            "planned_steps": plan.total_steps,
            "reason": outcome.reason,
            "best_step": outcome.best_step,
            "best_val_loss": outcome.best_val_loss,
            "final_val_loss": outcome.final_val_loss,
            "tokens_per_s": outcome.tokens_per_s,
            "train_seconds": outcome.train_seconds,
            "trained_tokens": outcome.trained_tokens,
            "block_size": block,
            "global_batch": plan.micro_batch * plan.grad_accum * self.d.world,
            "lr": plan.lr,
            "seed": s.seed,
            "threads": threads,
            "bf16": plan.bf16,
            "world_size": self.d.world,
            "save_dtype": s.save_dtype,
        }
        uses_chat = any(doc.kind == "chat" for part in split.parts().values() for doc in part)
        card = cards.build_card(
            settings=s,
            base_model=base_name,
            shape=shape,
            data=result.summary,
            before=result.before,
            after=result.after,
            training=training,
            output=output,
            chat=chat.as_dict() if uses_chat else None,
        )
        # the fixed-prompt samples belong in the card too, not only the report.
        card["samples"] = [
            {"prompt": prompt, "before": before, "after": after}
            for prompt, before, after in zip(
                result.prompts, result.samples_before, result.samples_after, strict=False
            )
        ]
        if s.fim:
            card["fim"] = fim.card_entry(s.fim)
        cards.write_card(staging, card)
        text = report.render(
            card, self.out.name, result.prompts, result.samples_before, result.samples_after
        )
        (staging / "report.md").write_text(text, encoding="utf-8")
        install(staging, self.out)
        # The checkpoints and token cache are only needed to resume; the run is complete.
        shutil.rmtree(ckpt.checkpoint_dir(self.run_dir), ignore_errors=True)
        for name in ("tokens.safetensors", "tokens.json"):
            (self.run_dir / name).unlink(missing_ok=True)
        result.card = card
        result.report = self.out / "report.md"


class _StopFlag:
    """Ctrl-C or SIGTERM asks the trainer to stop at the end of the step (and save); a second
    Ctrl-C aborts."""

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def _handler(self, signum: int, frame: Any) -> None:
        if self._set:
            raise KeyboardInterrupt
        self._set = True

    def installed(self) -> Any:
        import contextlib

        @contextlib.contextmanager
        def manager() -> Any:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            # SIGTERM (a logout, `kill`, a job scheduler) saves a checkpoint just like Ctrl-C.
            signals = (signal.SIGINT, signal.SIGTERM)
            old = {sig: signal.signal(sig, self._handler) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)

        return manager()


def _summary(files: Any, split: Split, parts: dict[str, TokenSplit]) -> dict[str, Any]:
    per_file: dict[str, int] = {}
    for docs in split.parts().values():
        for doc in docs:
            path = doc.source.rsplit(":", 1)[0] if doc.kind != "text" else doc.source
            per_file[path] = per_file.get(path, 0) + 1
    return {
        "files": [
            {"path": str(path), "format": fmt, "documents": per_file.get(str(path), 0)}
            for path, fmt in files.files
        ],
        "skipped_files": len(files.skipped),
        "kinds": sorted({doc.kind for docs in split.parts().values() for doc in docs}),
        "documents": {name: len(docs) for name, docs in split.parts().items()},
        "tokens": {name: int(len(p.ids)) for name, p in parts.items()},
        "trained_tokens": {name: int(p.mask.sum()) for name, p in parts.items()},
    }


def _example(split: Split, tokenizer: Any) -> str:
    docs: list[Document] = split.train or split.val or split.test
    if not docs:
        return ""
    # Prefer a document with a masked part: it shows what the loss skips.
    doc = next((d for d in docs if any(not s.trainable for s in d.segments)), docs[0])
    text = doc.rendered(eos_text=tokenizer.eos_token or "")
    if len(text) > EXAMPLE_CHARS:
        text = text[:EXAMPLE_CHARS] + " …"
    return f"{doc.source}:\n{text}"


def _shape(model: Any) -> dict[str, Any]:
    config = model.config
    keys = ("model_type", "n_layer", "n_head", "n_embd", "n_positions", "vocab_size")
    shape = {k: getattr(config, k) for k in keys if hasattr(config, k)}
    shape["parameters"] = sum(p.numel() for p in model.parameters())
    return shape
