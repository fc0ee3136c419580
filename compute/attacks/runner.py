"""Apply one attack to a whole set of images: every operating point, the noise controls, the rows.

Each image gets an adversarial at two operating points: ``minimal`` (just across the decision
boundary: FGSM at its smallest flipping epsilon, L-BFGS at its smallest successful c, IAA where it
first crossed) and ``confident`` (a wrong class wins with probability >= kappa on the dropout-off
model). Fixed budgets (FGSM's and EOT-PGD's epsilons) add ``budget`` rows. Every successful
adversarial gets a noise control of the same size (compute/attacks/noise.py). Each of these image
sets is a *condition* of the uncertainty table, named by ``contract.condition_name``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..contract import BUDGET, CLEAN, CONFIDENT, MINIMAL, condition_name
from ..pixels import to_uint8
from . import ATTACKS
from .common import CHANGE_TOL, distortion, ssim
from .noise import matched_noise
from .spec import AttackResult

if TYPE_CHECKING:
    from ..config import AttacksConfig


# Columns of the attacks table an attack may fill through AttackResult.columns (null elsewhere).
OWN_COLUMNS = ("min_eps", "c")
ROW_COLUMNS = ("image_id", "model", "dropout_p", "attack", "operating_point", "eps", "clean_correct", "success", "adv_pred",
               "adv_prob", "l0", "l2", "linf", "perceptual_distance", "flat_pixels_changed", "iterations",
               *OWN_COLUMNS, "noise_l0", "noise_l2", "noise_linf", "noise_pred", "seconds", "ssim")


@dataclass(frozen=True)
class Condition:
    """One set of images run through MC dropout: the clean images, or one set an attack made."""

    name: str  # CLEAN or condition_name(...)
    attack: str | None  # None for clean
    operating_point: str | None  # one of OPERATING_POINTS; None for clean
    eps: float | None  # the budget (operating point "budget"), else None
    noise: bool  # the noise control matched to the successful adversarials of this operating point
    images: np.ndarray  # uint8 (n, C, H, W): exactly the 8-bit images judged
    positions: np.ndarray  # int64 (n,): their positions among the images given to run_attack

    @staticmethod
    def clean(images: np.ndarray) -> Condition:
        """The clean images themselves (uint8 (n, C, H, W))."""
        return Condition(CLEAN, None, None, None, False, images, np.arange(len(images)))


@dataclass(frozen=True)
class AttackOutput:
    rows: dict[str, list]  # columns of the attacks table
    conditions: list[Condition]
    seconds: float


def _append(rows: dict[str, list], model: nn.Module, x: torch.Tensor, ids: list[int], key: str, p: float | None,
            attack: str,
            point: str, eps: float | None, result: AttackResult, clean_correct: torch.Tensor, seconds: float,
            window: int, noise: torch.Tensor) -> None:
    """Add one row per image of ``result`` at operating point ``point`` (``noise``: its controls)."""
    with torch.no_grad():
        probs = torch.softmax(model(result.adversarial), dim=1)
        noise_pred = model(noise).argmax(1)
    adv_prob, adv_pred = probs.max(dim=1)
    dist = {k: v.cpu() for k, v in distortion(x, result.adversarial, window).items()}
    success = (result.success & clean_correct).cpu()
    delta = (noise - x).flatten(1)
    n = len(ids)
    rows["image_id"] += ids
    rows["model"] += [key] * n
    rows["dropout_p"] += [p] * n
    rows["attack"] += [attack] * n
    rows["operating_point"] += [point] * n
    rows["eps"] += [eps] * n
    rows["clean_correct"] += clean_correct.cpu().tolist()
    rows["success"] += success.tolist()
    rows["adv_pred"] += adv_pred.cpu().tolist()
    rows["adv_prob"] += adv_prob.cpu().tolist()
    for key in ("l0", "l2", "linf", "perceptual_distance", "flat_pixels_changed"):
        rows[key] += dist[key].tolist()
    rows["iterations"] += result.iterations.cpu().tolist()
    for key in OWN_COLUMNS:
        values = result.columns.get(key)
        rows[key] += [None] * n if values is None else [None if v != v else v for v in values.cpu().tolist()]
    for key, values in (("noise_l0", (delta.abs() >= CHANGE_TOL).sum(dim=1)), ("noise_l2", delta.norm(dim=1)),
                        ("noise_linf", delta.abs().amax(dim=1)), ("noise_pred", noise_pred)):
        rows[key] += [v if ok else None for v, ok in zip(values.cpu().tolist(), success.tolist())]
    rows["seconds"] += [seconds / n] * n
    rows["ssim"] += ssim(to_uint8(x), to_uint8(result.adversarial)).tolist()


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
                        {eps: _only(r, keep, images) for eps, r in result.budgets.items()},
                        None if result.confident is None else _only(result.confident, keep, images))


def run_attack(name: str, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, image_ids: list[int],
               key: str, p: float | None, cfg: AttacksConfig, device: torch.device, progress: bool = True,
               seed: int = 0) -> AttackOutput:
    """Attack every image with attack ``name`` against ``model`` (``key``, dropout rate ``p``: what its
    rows name it by) in eval mode with dropout off, in
    batches of ``cfg.batch_size`` (``cfg`` is the resolved attacks config), at every operating point,
    and make the noise controls (keyed by ``seed``). ``images`` (N, C, H, W) in [0, 1] on the CPU.

    Images the model gets wrong before any attack are not attacked: their rows say
    ``clean_correct`` false, never a success, and their "adversarial" is the original.
    """
    attack, own = ATTACKS[name], getattr(cfg, name)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    # D is IAA's perceptual distance; every attack is measured with the same window so they compare.
    window = cfg.perceptual_window
    rows: dict[str, list] = {k: [] for k in ROW_COLUMNS}
    found: dict[tuple[str, float | None, bool], list[tuple[np.ndarray, np.ndarray]]] = {}
    seconds = 0.0
    bar = tqdm(total=len(images), desc=f"{name} {key}", unit="img", disable=not progress, leave=False)
    for start in range(0, len(images), cfg.batch_size):
        sl = slice(start, start + cfg.batch_size)
        x, y, ids = images[sl].to(device), labels[sl].to(device), image_ids[sl]
        t = time.perf_counter()
        with torch.no_grad():
            correct = model(x).argmax(1) == y
        attacked = attack.run(model=model, images=x[correct], labels=y[correct], cfg=own, kappa=cfg.kappa)
        result = _only(attacked, correct, x)
        dt = time.perf_counter() - t
        seconds += dt
        points = [(BUDGET, eps, r) for eps, r in result.budgets.items()] + [(MINIMAL, None, result)]
        if result.confident is not None:
            points.append((CONFIDENT, None, result.confident))
        for point, eps, r in points:
            noise = matched_noise(x, r.adversarial, attack.card.noise or attack.card.norm, ids, name, seed, window)
            _append(rows, model, x, ids, key, p, name, point, eps, r, correct, dt / len(points), window, noise)
            hit = (r.success & correct).cpu().numpy()
            where = np.arange(start, start + len(ids))
            found.setdefault((point, eps, False), []).append((to_uint8(r.adversarial), where))
            found.setdefault((point, eps, True), []).append((to_uint8(noise)[hit], where[hit]))
        bar.update(len(ids))
    bar.close()
    conditions = [Condition(condition_name(name, point, eps, noise), name, point, eps, noise,
                            np.concatenate([a for a, _ in parts]), np.concatenate([r for _, r in parts]))
                  for (point, eps, noise), parts in found.items()]
    return AttackOutput(rows, conditions, seconds)
