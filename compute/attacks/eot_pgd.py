"""EOT-PGD, an adaptive attacker that knows the defence is MC dropout.

Projected gradient ascent (Madry et al., ICLR 2018; without random start, as the basic iterative
method of Kurakin et al. 2017) on an L-infinity ball, where each step's gradient is an expectation
over ``masks`` dropout masks (Athalye, Carlini & Wagner, ICML 2018) of an objective of the MC
predictive mean p̄ = mean_k softmax(f_k(x)) with dropout on. The default objective is targeted:
    maximise  log p̄_t(x')  -  lambda * [argmax p̄ != y] * H[p̄(x')]    s.t. ||x' - x||_inf <= eps, x' in [0, 1]
with t the most likely wrong class of the current MC mean (chosen anew each step); ``objective =
"untargeted"`` maximises -log p̄_y instead. The entropy term keeps the predictive entropy low once
the image is misclassified, as Carlini & Wagner (AISec 2017) did to bypass dropout-based detection.
Pushing one wrong class up, rather than the true class down, is what makes the MC mean confident in
it, and so what hides the attack from uncertainty. Its baseline is PGD (compute/attacks/pgd.py): the
same budgets, steps and images against the model with dropout off, knowing nothing of dropout.

Threat model: white-box including the dropout layers, one L-infinity budget per run. Each step draws
fresh masks keyed by (seed, budget, step, the image's own bytes), so an image's result does not
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
STEPS, MAX_IMAGES = 10, 200  # shared with its baseline, PGD, so that the two compare on the same images
OBJECTIVES = ("targeted", "untargeted")


@dataclass(frozen=True)
class EotPgdConfig(AttackConfig):
    eps: tuple[float, ...] = ()  # L-infinity budgets; () = 0.1, 0.2, 0.3 (MNIST-like) or 4, 8, 16 /255 (colour)
    steps: int = STEPS  # PGD steps per budget
    step_size: float = 0.0  # step per pixel per step; 0 = 2.5 * eps / steps
    masks: int = 10  # dropout masks averaged in each step's gradient (expectation over transformation)
    entropy_weight: float = 1.0  # lambda: weight of the predictive entropy kept low once misclassified (0 = off)
    objective: str = "targeted"  # targeted: raise the MC mean's most likely wrong class | untargeted: lower the true class
    max_images: int = MAX_IMAGES  # attack only N test images, evenly spaced (0 = all); 200 keeps the CPU demo within 3 minutes
    seed: int = 0  # seeds the attacker's dropout masks (never the masks MC dropout is measured with)

    def resolve(self, channels: int) -> EotPgdConfig:
        """Fill the defaults that depend on the data: greyscale (1 channel) or colour."""
        return replace(self, eps=self.eps or (GREY_EPS if channels == 1 else COLOUR_EPS))

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for every invalid value; empty when valid."""
        out = [("eps", f"values must be > 0 (an L-infinity budget in [0, 1]), got {eps}") for eps in self.eps if eps <= 0]
        if self.steps < 1 or self.masks < 1 or self.step_size < 0 or self.entropy_weight < 0 or self.max_images < 0:
            out.append(("", "needs steps >= 1, masks >= 1, step_size >= 0, entropy_weight >= 0 and max_images >= 0"))
        if self.objective not in OBJECTIVES:
            out.append(("objective", f"must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"))
        return out

    def summary(self) -> str:
        return (f"objective {self.objective}, entropy weight λ = {self.entropy_weight:g}, {self.masks} masks per "
                f"step, {self.steps} steps")

    def subset(self) -> int:
        return self.max_images

    def limit_caption(self) -> str:
        return f"ε ≤ {max(self.eps):.4g}" if self.eps else "its budget"


CARD = Card("EOT-PGD", "PGD through MC dropout (gradients averaged over masks), entropy kept low once fooled",
            norm="linf", colour="reddish_purple", adaptive=True, baseline="pgd", ranking_column="min_eps",
            ranking_label="smallest fooling ε (EOT-PGD)", ranking_symbol="ε", own_column="min_eps", own_symbol="ε")


def _has_dropout(model: nn.Module) -> bool:
    from torch import nn
    return any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())


def image_keys(images: torch.Tensor) -> list[int]:
    """A key per image from its bytes: what its dropout masks are drawn from."""
    from ..pixels import to_uint8
    data = to_uint8(images)
    return [int.from_bytes(hashlib.sha256(d.tobytes()).digest()[:7], "little") for d in data]


def _objective(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, masks: int, entropy_weight: float,
               objective: str = "targeted") -> torch.Tensor:
    """Per image, over ``masks`` stochastic passes of the MC mean p̄ (in log space, so that one pass
    gives exactly the log-softmax): log p̄_t (targeted, t the most likely wrong class of p̄) or -log p̄_y
    (untargeted), minus lambda [argmax p̄ != y] H[p̄]. Higher is better for the attacker."""
    import torch
    from torch.nn import functional as F
    split = getattr(model, "split_at_first_dropout", None)
    if split is not None and masks > 1:  # layers before the first dropout see the same input in every pass
        prefix, suffix = split()
        z = prefix(x)
        logits = suffix(z.repeat(masks, *([1] * (z.dim() - 1))))
    else:
        logits = model(x.repeat(masks, 1, 1, 1) if masks > 1 else x)
    log_probs = torch.log_softmax(logits, dim=1).view(masks, x.shape[0], -1)
    log_mean = torch.logsumexp(log_probs, dim=0) - math.log(masks)  # log p̄, not the mean of log p_k
    if objective == "targeted":
        wrong_class = log_mean.detach().masked_fill(F.one_hot(labels, log_mean.shape[1]).bool(), float("-inf"))
        gain = log_mean.gather(1, wrong_class.argmax(1, keepdim=True)).squeeze(1)
    else:
        gain = -log_mean.gather(1, labels[:, None]).squeeze(1)
    if entropy_weight:
        fooled = (log_mean.argmax(1) != labels).to(gain.dtype).detach()
        gain = gain + entropy_weight * fooled * (log_mean.exp() * log_mean).sum(1)  # - lambda H[p̄] once fooled
    return gain


def eot_pgd(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float, steps: int = STEPS,
            step_size: float = 0.0, masks: int = 10, entropy_weight: float = 1.0, seed: int = 0,
            objective: str = "targeted") -> torch.Tensor:
    """EOT-PGD adversarials at L-infinity budget ``eps``, 8-bit with the change rounded toward the original."""
    import torch
    from ..methods.mc_dropout import mc_dropout
    from .common import linf_pgd
    stochastic = _has_dropout(model)
    k = masks if stochastic else 1  # no dropout: every pass is the same, one is exact
    keys = image_keys(images)

    def ascent(step: int, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            if stochastic:  # fresh masks every step: the expectation is over masks, not one fixed mask
                with mc_dropout(model, keys, k, f"eot-pgd:{seed}:{eps}:{step}"):
                    gain = _objective(model, x, labels, k, entropy_weight, objective)
            else:
                gain = _objective(model.eval(), x, labels, k, entropy_weight, objective)
            (grad,) = torch.autograd.grad(gain.sum(), x)
        return grad

    adv = linf_pgd(images, eps, steps, step_size or 2.5 * eps / steps, ascent)
    model.eval()
    return adv


def run(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: EotPgdConfig,
        kappa: float = 0.9) -> AttackResult:
    """EOT-PGD at every budget of ``cfg.eps``, and per image the smallest budget that fools (minimal)
    and that reaches probability ``kappa`` (confident); ``min_eps`` is that budget (NaN: none)."""
    from .common import over_budgets
    return over_budgets(model, images, labels, cfg.eps, kappa, cfg.steps, lambda eps: eot_pgd(
        model, images, labels, eps, cfg.steps, cfg.step_size, cfg.masks, cfg.entropy_weight, cfg.seed, cfg.objective))
