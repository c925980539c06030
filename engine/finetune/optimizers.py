"""The optimizers a training run can use: AdamW, or Muon for the transformer blocks' matrices
with AdamW for the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from scribe.engine.finetune.trainer import Plan


def _decay_groups(params: list[tuple[str, torch.nn.Parameter]], weight_decay: float) -> list[dict]:
    """Weight decay on matrices only; biases, layer norms and prefixes are not decayed."""
    decay = [p for name, p in params if p.dim() >= 2 and "prefix" not in name]
    no_decay = [p for name, p in params if not (p.dim() >= 2 and "prefix" not in name)]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def adamw(
    params: list[tuple[str, torch.nn.Parameter]], lr: float, weight_decay: float, beta2: float
) -> torch.optim.AdamW:
    # The fused kernel (CPU and CUDA) does the whole update in one pass over the parameters.
    return torch.optim.AdamW(
        _decay_groups(params, weight_decay), lr=lr, betas=(0.9, beta2), eps=1e-8, fused=True
    )


class MuonAdamW:
    """Muon for the transformer blocks' matrices, AdamW for everything else (embeddings, head,
    biases, norms), stepped together. Muon's steps are scaled to AdamW's RMS
    ("match_rms_adamw"), so one learning rate and schedule serve both."""

    def __init__(self, model: torch.nn.Module, lr: float, weight_decay: float, beta2: float):
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        matrices = [(n, p) for n, p in params if p.dim() == 2 and ".h." in f".{n}"]
        rest = [(n, p) for n, p in params if not (p.dim() == 2 and ".h." in f".{n}")]
        self.parts = [
            torch.optim.Muon(
                [p for _, p in matrices],
                lr=lr,
                weight_decay=weight_decay,
                adjust_lr_fn="match_rms_adamw",
            ),
            adamw(rest, lr, weight_decay, beta2),
        ]
        self.param_groups = [g for part in self.parts for g in part.param_groups]

    def step(self) -> None:
        for part in self.parts:
            part.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.parts[0].state_dict(), "adamw": self.parts[1].state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.parts[0].load_state_dict(state["muon"])
        self.parts[1].load_state_dict(state["adamw"])


def make_optimizer(model: torch.nn.Module, plan: Plan) -> Any:
    """The plan's optimizer over the model's trainable parameters."""
    if plan.optimizer == "muon":
        return MuonAdamW(model, plan.lr, plan.weight_decay, plan.beta2)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return adamw(params, plan.lr, plan.weight_decay, plan.beta2)
