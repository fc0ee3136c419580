"""What all attacks share: the result type, input gradients, distortion norms, and the IAA
perceptual distance.

Images are float tensors in pixel space [0, 1], shape (B, C, H, W); a "pixel" is one value
(channel, row, column). A pixel counts as changed when its 8-bit value would change, i.e. when
|x' - x| >= 0.5 / 255: smaller changes vanish when the image is saved.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CHANGE_TOL = 0.5 / 255


class AttackConfig:
    """Base of every attack's frozen config dataclass (one ``[attacks.<name>]`` section)."""

    def resolve(self, channels: int) -> AttackConfig:
        """The config with its data-dependent defaults (0 or empty) filled for ``channels``."""
        return self

    def problems(self) -> list[tuple[str, str]]:
        """(key within the section, or "" for the section; what is wrong) per invalid value."""
        return []

    def subset(self) -> int:
        """Attack only this many test images (0 = all), spread evenly over the test set
        (``subset_positions``): for attacks too costly for every image."""
        return 0


def subset_positions(total: int, limit: int) -> np.ndarray:
    """The positions, among ``total`` test images, of a subset of ``limit`` (0 or >= total: all):
    evenly spaced, so that a test set stored class by class gives every class its share (the first
    ``limit`` would give the first classes only)."""
    if not 0 < limit < total:
        return np.arange(total)
    return (np.arange(limit, dtype=np.int64) * total) // limit


@dataclass(frozen=True)
class AttackResult:
    """What every attack's ``run`` returns for a batch of B images.

    ``adversarial`` is each image's minimal adversarial (just across the decision boundary);
    ``confident`` the result at the confident operating point (the adversarial class wins with
    probability >= kappa on the dropout-off model), judged the same way. ``columns`` holds the
    attack's own per-image columns of the attacks table (FGSM's ``min_eps``, L-BFGS's ``c``; NaN =
    none). ``budgets`` maps a fixed budget (an L-infinity epsilon) to the result at that budget;
    those rows carry the budget in the table's ``eps`` column.
    """

    adversarial: torch.Tensor  # (B, C, H, W) on the k/255 grid (see to_8bit)
    success: torch.Tensor  # (B,) bool: the model (dropout off) gets this 8-bit adversarial wrong
    iterations: torch.Tensor  # (B,) int64
    columns: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (B,) float
    budgets: dict[float, "AttackResult"] = field(default_factory=dict)
    confident: "AttackResult | None" = None


def reached(logits: torch.Tensor, labels: torch.Tensor, kappa: float | None = None) -> torch.Tensor:
    """Per image: the model's top class is not the label (kappa None: the minimal goal), and with
    ``kappa`` its softmax probability is at least kappa as well (the confident goal)."""
    wrong = logits.argmax(1) != labels
    if kappa is None:
        return wrong
    return wrong & (torch.softmax(logits.float(), dim=1).amax(1) >= kappa)


def to_8bit(images: torch.Tensor, original: torch.Tensor | None = None) -> torch.Tensor:
    """``images`` on the k/255 grid, as they are saved and shown: every attack judges success on this.

    Alone, each pixel is rounded to the nearest level. With ``original`` (itself 8-bit), each
    pixel's change is rounded toward zero to whole levels, so a budget on the change (FGSM's
    epsilon) still holds after rounding.
    """
    if original is None:
        return (images.clamp(0.0, 1.0) * 255).round() / 255
    change = (images - original) * 255
    change = torch.trunc(change + change.sign() * 1e-3)  # 1e-3: float error must not drop a whole level
    return ((original * 255).round() + change).clamp(0, 255) / 255


def input_gradient(model: nn.Module, x: torch.Tensor, loss_fn) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    """(per-image loss (B,), gradient of its sum w.r.t. ``x``); parameters get no gradient."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(model(x))
        (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad.detach()


def local_sd(x: torch.Tensor, window: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard deviation of each pixel's ``window`` x ``window`` neighbourhood (edges replicated),
    per channel, and the mask of flat pixels whose neighbourhood is constant (SD exactly 0)."""
    pad = window // 2
    b, c, h, w = x.shape
    if x.numel() == 0:  # no image (a batch where every image was wrong before the attack)
        return torch.zeros_like(x), torch.zeros_like(x, dtype=torch.bool)
    padded = F.pad(x.reshape(b * c, 1, h, w), (pad, pad, pad, pad), mode="replicate")
    patches = F.unfold(padded, window)  # (B*C, window^2, H*W)
    sd = patches.std(dim=1, unbiased=False).reshape(b, c, h, w)
    flat = (patches.amax(dim=1) == patches.amin(dim=1)).reshape(b, c, h, w)
    return sd.masked_fill(flat, 0.0), flat


def sensitivity(x: torch.Tensor, window: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Sen(x_i) = 1 / SD(x_i), infinite on flat pixels; returns (sen, flat)."""
    sd, flat = local_sd(x, window)
    return torch.where(flat, torch.full_like(sd, float("inf")), 1.0 / sd.clamp_min(1e-12)), flat


def distortion(x: torch.Tensor, adv: torch.Tensor, window: int = 3) -> dict[str, torch.Tensor]:
    """Per image: l0 (changed pixels), l2, linf, perceptual_distance (sum of |delta| * Sen over
    changed pixels with SD > 0, Sen from the original image) and flat_pixels_changed."""
    delta = (adv - x).flatten(1)
    changed = delta.abs() >= CHANGE_TOL
    sen, flat = sensitivity(x, window)
    sen, flat = sen.flatten(1), flat.flatten(1)
    textured = changed & ~flat
    return {
        "l0": changed.sum(1),
        "l2": delta.norm(dim=1),
        "linf": delta.abs().amax(dim=1),
        "perceptual_distance": torch.where(textured, delta.abs() * sen.nan_to_num(posinf=0.0), 0.0).sum(1),
        "flat_pixels_changed": (changed & flat).sum(1),
    }


def smooth_gap(probs: torch.Tensor, target: torch.Tensor, k: float) -> torch.Tensor:
    """IAA's Gap(X) = P_t - log(sum_{i != t} exp(k P_i)) / k for probabilities (B, C).

    It lies in [true_gap - log(C - 1) / k, true_gap] where true_gap = P_t - max_{i != t} P_i.
    """
    others = probs.masked_fill(F.one_hot(target, probs.shape[1]).bool(), float("-inf"))
    return probs.gather(1, target[:, None]).squeeze(1) - torch.logsumexp(k * others, dim=1) / k


def true_gap(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """P_t - max_{i != t} P_i: negative exactly when another class is more likely than ``target``."""
    others = probs.masked_fill(F.one_hot(target, probs.shape[1]).bool(), float("-inf"))
    return probs.gather(1, target[:, None]).squeeze(1) - others.amax(dim=1)


def most_likely_wrong(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The most likely class other than the true one, per image."""
    return logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")).argmax(1)
