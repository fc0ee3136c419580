"""EOT-PGD, an adaptive attacker that knows the defence is MC dropout.

Projected gradient descent (Madry et al., ICLR 2018; without random start, as the basic iterative
method of Kurakin et al. 2017) on an L-infinity ball, where each step's gradient is an expectation
over ``masks`` dropout masks (Athalye, Carlini & Wagner, ICML 2018) of the loss of the MC predictive
mean p̄ = mean_k softmax(f_k(x)) with dropout on:
    maximise  -log p̄_y(x')  -  lambda * [argmax p̄ != y] * H[p̄(x')]    s.t. ||x' - x||_inf <= eps, x' in [0, 1]
The entropy term keeps the predictive entropy low once the image is misclassified, as Carlini & Wagner
(AISec 2017) did to bypass dropout-based detection (before that it would only hold the image at its
confident true class). With dropout rate 0 and lambda = 0 it is plain PGD on the cross-entropy.

Threat model: white-box including the dropout layers, untargeted, one L-infinity budget per run.
Each step draws fresh masks keyed by (seed, step, the image's own bytes), so an image's result does not
depend on its batch mates. Success is judged like every attack's: the 8-bit adversarial (change rounded toward the original, so
the budget holds) fools the model with dropout off; MC dropout on it is measured afterwards.
Per image, the minimal point is the smallest budget of the list that fools, the confident point the
smallest that reaches probability kappa; failures keep the largest budget.
Tensors: images (B, C, H, W) in [0, 1], labels (B,) int64.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .spec import AttackConfig, AttackResult, Card

if TYPE_CHECKING:  # torch is imported where it runs: the configs above must load without it
    import torch
    from torch import nn

GREY_EPS = (0.1, 0.2, 0.3)
COLOUR_EPS = (4 / 255, 8 / 255, 16 / 255)


@dataclass(frozen=True)
class EotPgdConfig(AttackConfig):
    eps: tuple[float, ...] = ()  # L-infinity budgets; () = 0.1, 0.2, 0.3 (MNIST-like) or 4, 8, 16 /255 (colour)
    steps: int = 10  # PGD steps per budget
    step_size: float = 0.0  # step per pixel per step; 0 = 2.5 * eps / steps
    masks: int = 10  # dropout masks averaged in each step's gradient (expectation over transformation)
    entropy_weight: float = 1.0  # lambda: weight of the predictive entropy kept low once misclassified (0 = off)
    max_images: int = 200  # attack only N test images, evenly spaced (0 = all); 200 keeps the CPU demo within 3 minutes
    seed: int = 0  # seeds the attacker's dropout masks (never the masks MC dropout is measured with)

    def resolve(self, channels: int) -> EotPgdConfig:
        """Fill the defaults that depend on the data: greyscale (1 channel) or colour."""
        return replace(self, eps=self.eps or (GREY_EPS if channels == 1 else COLOUR_EPS))

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for every invalid value; empty when valid."""
        out = [("eps", f"values must be > 0 (an L-infinity budget in [0, 1]), got {eps}") for eps in self.eps if eps <= 0]
        if self.steps < 1 or self.masks < 1 or self.step_size < 0 or self.entropy_weight < 0 or self.max_images < 0:
            out.append(("", "needs steps >= 1, masks >= 1, step_size >= 0, entropy_weight >= 0 and max_images >= 0"))
        return out

    def subset(self) -> int:
        return self.max_images

    def limit_caption(self) -> str:
        return f"ε ≤ {max(self.eps):.4g}" if self.eps else "its budget"


CARD = Card("EOT-PGD", "PGD through MC dropout (gradients averaged over masks), entropy kept low once fooled",
            norm="linf", colour="reddish_purple", adaptive=True, ranking_column="min_eps",
            ranking_label="smallest fooling ε (EOT-PGD)", ranking_symbol="ε", own_column="min_eps", own_symbol="ε")


def _has_dropout(model: nn.Module) -> bool:
    from torch import nn
    return any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())


def image_keys(images: torch.Tensor) -> list[int]:
    """A key per image from its bytes: what its dropout masks are drawn from."""
    from ..pixels import to_uint8
    data = to_uint8(images)
    return [int.from_bytes(hashlib.sha256(d.tobytes()).digest()[:7], "little") for d in data]


def _objective(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, masks: int,
               entropy_weight: float) -> torch.Tensor:
    """Per image: -log p̄_y - lambda [misclassified] H[p̄] over ``masks`` stochastic passes (log space,
    so that one pass gives exactly the cross-entropy)."""
    import torch
    split = getattr(model, "split_at_first_dropout", None)
    if split is not None and masks > 1:  # layers before the first dropout see the same input in every pass
        prefix, suffix = split()
        z = prefix(x)
        logits = suffix(z.repeat(masks, *([1] * (z.dim() - 1))))
    else:
        logits = model(x.repeat(masks, 1, 1, 1) if masks > 1 else x)
    log_probs = torch.log_softmax(logits, dim=1).view(masks, x.shape[0], -1)
    log_mean = torch.logsumexp(log_probs, dim=0) - math.log(masks)
    loss = -log_mean.gather(1, labels[:, None]).squeeze(1)
    if entropy_weight:
        wrong = (log_mean.argmax(1) != labels).to(loss.dtype).detach()
        loss = loss + entropy_weight * wrong * (log_mean.exp() * log_mean).sum(1)  # - lambda H[p̄] once fooled
    return loss


def eot_pgd(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float, steps: int = 10,
            step_size: float = 0.0, masks: int = 10, entropy_weight: float = 1.0, seed: int = 0) -> torch.Tensor:
    """EOT-PGD adversarials at L-infinity budget ``eps``, 8-bit with the change rounded toward the original."""
    from ..methods.mc_dropout import mc_dropout
    from ..pixels import to_grid
    import torch
    alpha = step_size or 2.5 * eps / steps
    stochastic = _has_dropout(model)
    k = masks if stochastic else 1  # no dropout: every pass is the same, one is exact
    keys = image_keys(images)
    adv = images.clone()
    for step in range(steps):
        x = adv.detach().requires_grad_(True)
        with torch.enable_grad():
            if stochastic:
                with mc_dropout(model, keys, k, f"eot-pgd:{seed}:{eps}:{step}"):
                    loss = _objective(model, x, labels, k, entropy_weight)
            else:
                loss = _objective(model.eval(), x, labels, k, entropy_weight)
            (grad,) = torch.autograd.grad(loss.sum(), x)
        with torch.no_grad():
            adv = torch.min(torch.max(adv + alpha * grad.sign(), images - eps), images + eps).clamp(0.0, 1.0)
    model.eval()
    return to_grid(adv, images)


def run(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: EotPgdConfig,
        kappa: float = 0.9) -> AttackResult:
    """EOT-PGD at every budget of ``cfg.eps``, and per image the smallest budget that fools (minimal)
    and that reaches probability ``kappa`` (confident); ``min_eps`` is that budget (NaN: none)."""
    import torch
    from .common import reached
    budgets: dict[float, AttackResult] = {}
    found = {goal: torch.full((len(labels),), float("nan"), device=images.device) for goal in (None, kappa)}
    picked = {goal: images.clone() for goal in found}
    for i, eps in enumerate(sorted(cfg.eps)):
        adv = eot_pgd(model, images, labels, eps, cfg.steps, cfg.step_size, cfg.masks, cfg.entropy_weight, cfg.seed)
        with torch.no_grad():
            logits = model(adv)
        for goal, where in found.items():
            new = reached(logits, labels, goal) & torch.isnan(where)
            if i == len(cfg.eps) - 1:  # failures keep the largest budget
                new = new | torch.isnan(where)
            where[new & reached(logits, labels, goal)] = eps
            picked[goal][new] = adv[new]
        budgets[eps] = AttackResult(adv, logits.argmax(1) != labels, torch.full_like(labels, cfg.steps))
    iterations = torch.full_like(labels, cfg.steps)
    confident = AttackResult(picked[kappa], ~torch.isnan(found[kappa]), iterations, {"min_eps": found[kappa]})
    return AttackResult(picked[None], ~torch.isnan(found[None]), iterations, {"min_eps": found[None]}, budgets,
                        confident)
