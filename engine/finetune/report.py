"""`report.md`: the run's data, training and before/after evaluation, written beside the model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scribe.engine.finetune.before_after import BeforeAfter

# The before/after table: metric key -> row label, in the order shown.
METRICS = {
    "perplexity": "test perplexity",
    "test_loss": "test loss (nats/token)",
    "bleu": "BLEU",
    "rouge1": "ROUGE-1 F1",
    "rouge2": "ROUGE-2 F1",
    "rougeL": "ROUGE-L F1",
}
PRECISE = {"test_loss"}  # a loss in nats moves in the third decimal; the others are on 0-100


def _figure(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if key in PRECISE else f"{value:.2f}"


def metric_rows(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, before, after) for each metric either side has."""
    return [
        (label, _figure(key, before.get(key)), _figure(key, after.get(key)))
        for key, label in METRICS.items()
        if before.get(key) is not None or after.get(key) is not None
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>").strip() or " "


def render(card: dict[str, Any], name: str, scores: BeforeAfter) -> str:
    data, training = card["data"], card["training"]
    metrics = card["metrics"]
    lines = [
        f"# Fine-tuning report: {name}",
        "",
        f"- command: `{card['command']}`",
        f"- base model: {card['base_model']}",
        f"- method: {card['method']} ({card.get('format')})",
        "",
        "## Data",
        "",
        "| split | documents | tokens | trained tokens | blocks |",
        "|---|---:|---:|---:|---:|",
    ]
    for split in ("train", "val", "test"):
        lines.append(
            f"| {split} | {data['documents'][split]} | {data['tokens'][split]} | "
            f"{data['trained_tokens'][split]} | {data['blocks'][split]} |"
        )
    files = ", ".join(f"{f['path']} ({f['format']})" for f in data["files"])
    lines += ["", f"Files: {files}", ""]
    lines += [
        "## Training",
        "",
        f"- steps: {training['steps']} of {training['planned_steps']} ({training['reason']})",
        f"- best validation loss: {_num(training.get('best_val_loss'))} "
        f"at step {training.get('best_step')}",
        f"- block size {training['block_size']}, global batch {training['global_batch']} blocks, "
        f"lr {training['lr']}, {training['world_size']} process(es), "
        f"{training['threads']} thread(s), "
        f"bf16 {'on' if training['bf16'] else 'off'}",
        f"- speed: {training['tokens_per_s']:.0f} tokens/s, {training['train_seconds']:.1f} s",
        "",
        "## Evaluation (test split)",
        "",
        "| metric | before | after |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {a} | {b} | {c} |" for a, b, c in metric_rows(metrics["before"], metrics["after"])
    ]
    if scores.prompts:
        lines += ["", "## Samples (greedy)", "", "| prompt | before | after |", "|---|---|---|"]
        samples = zip(scores.prompts, scores.before.samples, scores.after.samples, strict=False)
        for prompt, b, a in samples:
            lines.append(f"| {_cell(prompt)} | {_cell(shown(b))} | {_cell(shown(a))} |")
    return "\n".join(lines) + "\n"


EMPTY = "(empty: the model ended the text)"


def shown(sample: str) -> str:
    """A sample as a reader sees it: never a silent blank."""
    return sample if sample.strip() else EMPTY


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
