"""The attack registry and the runner that applies one attack to a whole set of images.

Every attack is one file with a frozen config dataclass (its ``[attacks.<name>]`` section) and
``run(model, images, labels, cfg) -> AttackResult``. Adding an attack is that file and one line in
``ATTACKS``: the config section, its validation, the CLI's choices, the pipeline's parts and the
site's pages all follow from the registry.

Each image keeps one *minimal* adversarial per attack (FGSM at its smallest flipping epsilon,
L-BFGS at its smallest successful c, IAA where it stopped): the image shown, tiled and run through
MC dropout as the condition named after the attack. Fixed budgets (FGSM's epsilons) add rows.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from . import fgsm, iaa, lbfgs
from .common import AttackConfig, AttackResult, distortion

if TYPE_CHECKING:
    from ..config import AttacksConfig


@dataclass(frozen=True)
class Attack:
    config: type[AttackConfig]  # its config section's dataclass
    run: Callable[..., AttackResult]  # run(model=, images=, labels=, cfg=)


ATTACKS: dict[str, Attack] = {
    "fgsm": Attack(fgsm.FgsmConfig, fgsm.run),
    "lbfgs": Attack(lbfgs.LbfgsConfig, lbfgs.run),
    "iaa": Attack(iaa.IaaConfig, iaa.run),
}

# Columns of the attacks table an attack may fill through AttackResult.columns (null elsewhere).
OWN_COLUMNS = ("min_eps", "c")
ROW_COLUMNS = ("image_id", "dropout_p", "attack", "eps", "minimal", "clean_correct", "success", "adv_pred", "adv_prob", "l0",
               "l2", "linf", "perceptual_distance", "flat_pixels_changed", "iterations", *OWN_COLUMNS, "seconds")


def resolve(cfg: AttacksConfig, channels: int) -> AttacksConfig:
    """The attacks config with every attack's data-dependent defaults filled (greyscale vs colour)."""
    return replace(cfg, **{name: getattr(cfg, name).resolve(channels) for name in ATTACKS})


@dataclass(frozen=True)
class AttackOutput:
    rows: dict[str, list]  # columns of the attacks table
    adversarial: torch.Tensor  # minimal adversarials (N, C, H, W), CPU float32
    seconds: float


def _append(rows: dict[str, list], model: nn.Module, x: torch.Tensor, ids: list[int], p: float, attack: str,
            eps: float | None, result: AttackResult, clean_correct: torch.Tensor, seconds: float, window: int) -> None:
    """Add one row per image of ``result`` (the minimal adversarial when ``eps`` is None)."""
    with torch.no_grad():
        probs = torch.softmax(model(result.adversarial), dim=1)
    adv_prob, adv_pred = probs.max(dim=1)
    dist = {k: v.cpu() for k, v in distortion(x, result.adversarial, window).items()}
    n = len(ids)
    rows["image_id"] += ids
    rows["dropout_p"] += [p] * n
    rows["attack"] += [attack] * n
    rows["eps"] += [eps] * n
    rows["minimal"] += [eps is None] * n
    rows["clean_correct"] += clean_correct.cpu().tolist()
    rows["success"] += (result.success & clean_correct).cpu().tolist()
    rows["adv_pred"] += adv_pred.cpu().tolist()
    rows["adv_prob"] += adv_prob.cpu().tolist()
    for key in ("l0", "l2", "linf", "perceptual_distance", "flat_pixels_changed"):
        rows[key] += dist[key].tolist()
    rows["iterations"] += result.iterations.cpu().tolist()
    for key in OWN_COLUMNS:
        values = result.columns.get(key)
        rows[key] += [None] * n if values is None else [None if v != v else v for v in values.cpu().tolist()]
    rows["seconds"] += [seconds / n] * n


def _only(result: AttackResult, keep: torch.Tensor, images: torch.Tensor) -> AttackResult:
    """``result`` of the images where ``keep`` is set, spread over the whole batch: the others are
    not attacked (their adversarial is the original, never a success, no iterations)."""
    b = len(keep)

    def spread(values: torch.Tensor, fill: float | bool | int) -> torch.Tensor:
        out = torch.full((b, *values.shape[1:]), fill, dtype=values.dtype, device=values.device)
        out[keep] = values
        return out

    adversarial = images.clone()
    adversarial[keep] = result.adversarial
    return AttackResult(adversarial, spread(result.success, False), spread(result.iterations, 0),
                        {k: spread(v, float("nan")) for k, v in result.columns.items()},
                        {eps: _only(r, keep, images) for eps, r in result.budgets.items()})


def run_attack(name: str, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, image_ids: list[int],
               p: float, cfg: AttacksConfig, device: torch.device, progress: bool = True) -> AttackOutput:
    """Attack every image with attack ``name`` against ``model`` in eval mode with dropout off, in
    batches of ``cfg.batch_size`` (``cfg`` is the resolved attacks config). ``images`` (N, C, H, W)
    in [0, 1] on the CPU.

    Images the model gets wrong before any attack are not attacked: their rows say
    ``clean_correct`` false, never a success, and their "adversarial" is the original.
    """
    attack, own = ATTACKS[name], getattr(cfg, name)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    # D is IAA's perceptual distance; every attack is measured with IAA's window so they compare.
    window = cfg.iaa.window
    rows: dict[str, list] = {k: [] for k in ROW_COLUMNS}
    adversarial = torch.empty_like(images)
    seconds = 0.0
    bar = tqdm(total=len(images), desc=f"{name} p={p:g}", unit="img", disable=not progress, leave=False)
    for start in range(0, len(images), cfg.batch_size):
        sl = slice(start, start + cfg.batch_size)
        x, y, ids = images[sl].to(device), labels[sl].to(device), image_ids[sl]
        t = time.perf_counter()
        with torch.no_grad():
            correct = model(x).argmax(1) == y
        attacked = attack.run(model=model, images=x[correct], labels=y[correct], cfg=own)
        result = _only(attacked, correct, x)
        dt = time.perf_counter() - t
        seconds += dt
        share = dt / (1 + len(result.budgets))  # each row set's share of the batch's time
        for eps, at_budget in result.budgets.items():
            _append(rows, model, x, ids, p, name, eps, at_budget, correct, share, window)
        _append(rows, model, x, ids, p, name, None, result, correct, share, window)
        adversarial[sl] = result.adversarial.cpu()
        bar.update(len(ids))
    bar.close()
    return AttackOutput(rows, adversarial, seconds)
