"""The three attacks (one file each) and the runner that applies them to a whole test set.

Each attack yields, per image, one *minimal* adversarial (FGSM at the image's smallest flipping
epsilon, L-BFGS at its smallest successful c, IAA where it stopped): these are the images shown,
tiled and run through MC dropout as the conditions "fgsm", "lbfgs" and "iaa". FGSM also reports
every configured epsilon.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import AttacksConfig
from .common import distortion
from .fgsm import fgsm, fgsm_direction, min_flip_eps
from .iaa import iaa
from .lbfgs import lbfgs

GREY_EPS = (0.05, 0.1, 0.2, 0.3)
COLOUR_EPS = (2 / 255, 4 / 255, 8 / 255)


def resolve(cfg: AttacksConfig, channels: int) -> AttacksConfig:
    """Fill the dataset-dependent defaults (0 or empty in the config): greyscale vs colour data."""
    grey = channels == 1
    fg, ia = cfg.fgsm, cfg.iaa
    fg = replace(fg, eps=fg.eps or (GREY_EPS if grey else COLOUR_EPS),
                 search_max=fg.search_max or (0.5 if grey else 32 / 255))
    ia = replace(ia, delta=ia.delta or (0.1 if grey else 8 / 255))
    return replace(cfg, fgsm=fg, iaa=ia)


@dataclass
class AttackOutput:
    rows: dict[str, list]  # columns of the attacks table
    minimal: dict[str, torch.Tensor]  # attack -> minimal adversarials (N, C, H, W), CPU float32
    seconds: dict[str, float]


ROW_COLUMNS = ("image_id", "dropout_p", "attack", "eps", "minimal", "success", "adv_pred", "adv_prob", "l0",
               "l2", "linf", "perceptual_distance", "flat_pixels_changed", "iterations", "min_eps", "c",
               "seconds")


def _append(rows: dict[str, list], ids: list[int], p: float, attack: str, eps: float | None, minimal: bool,
            model: nn.Module, x: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor, iterations: torch.Tensor,
            seconds: float, window: int, min_eps: torch.Tensor, c: torch.Tensor | None = None,
            success: torch.Tensor | None = None) -> None:
    with torch.no_grad():
        probs = torch.softmax(model(adv), dim=1)
    adv_prob, adv_pred = probs.max(dim=1)
    ok = adv_pred != labels if success is None else success
    dist = {k: v.cpu() for k, v in distortion(x, adv, window).items()}
    n = len(ids)
    rows["image_id"] += ids
    rows["dropout_p"] += [p] * n
    rows["attack"] += [attack] * n
    rows["eps"] += [eps] * n
    rows["minimal"] += [minimal] * n
    rows["success"] += ok.cpu().tolist()
    rows["adv_pred"] += adv_pred.cpu().tolist()
    rows["adv_prob"] += adv_prob.cpu().tolist()
    for key in ("l0", "l2", "linf", "perceptual_distance", "flat_pixels_changed"):
        rows[key] += dist[key].tolist()
    rows["iterations"] += iterations.cpu().tolist()
    rows["min_eps"] += [None if v != v else v for v in min_eps.cpu().tolist()] if attack == "fgsm" else [None] * n
    rows["c"] += [None if v != v else v for v in c.cpu().tolist()] if c is not None else [None] * n
    rows["seconds"] += [seconds / n] * n


def run_attacks(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, image_ids: list[int], p: float,
                cfg: AttacksConfig, device: torch.device, progress: bool = True) -> AttackOutput:
    """Attack every image with every enabled attack (``cfg`` already resolved) against ``model``
    in eval mode with dropout off. ``images`` (N, C, H, W) in [0, 1] on the CPU."""
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    rows: dict[str, list] = {k: [] for k in ROW_COLUMNS}
    minimal = {a: torch.empty_like(images) for a in cfg.enabled}
    seconds = {a: 0.0 for a in cfg.enabled}
    window = cfg.iaa.window
    bar = tqdm(total=len(images) * len(cfg.enabled), desc=f"attacks p={p:g}", unit="img", disable=not progress,
               leave=False)
    for start in range(0, len(images), cfg.batch_size):
        sl = slice(start, start + cfg.batch_size)
        x, y, ids = images[sl].to(device), labels[sl].to(device), image_ids[sl]
        nan = torch.full((len(ids),), float("nan"), device=device)
        if "fgsm" in cfg.enabled:
            t = time.perf_counter()
            fg = cfg.fgsm
            direction = fgsm_direction(model, x, y)
            min_eps, passes = min_flip_eps(model, x, y, direction, fg.search_max, fg.search_grid, fg.search_refine)
            per_eps = []
            for eps in fg.eps:
                per_eps.append((eps, fgsm(model, x, y, eps, direction)))
            adv_min = (x + min_eps.nan_to_num(fg.search_max).view(-1, 1, 1, 1) * direction).clamp(0.0, 1.0)
            dt = time.perf_counter() - t
            seconds["fgsm"] += dt
            ones = torch.ones(len(ids), dtype=torch.int64)
            for eps, adv in per_eps:
                _append(rows, ids, p, "fgsm", eps, False, model, x, adv, y, ones, dt / (len(fg.eps) + 1), window,
                        min_eps)
            _append(rows, ids, p, "fgsm", None, True, model, x, adv_min, y, torch.full_like(ones, passes),
                    dt / (len(fg.eps) + 1), window, min_eps, success=~torch.isnan(min_eps))
            minimal["fgsm"][sl] = adv_min.cpu()
            bar.update(len(ids))
        if "lbfgs" in cfg.enabled:
            t = time.perf_counter()
            lb = cfg.lbfgs
            target = None if lb.target < 0 else torch.full_like(y, lb.target)
            r = lbfgs(model, x, y, target, lb.c_init, lb.c_factor, lb.c_min, lb.c_max, lb.bisection_steps,
                      lb.iterations, lb.history)
            dt = time.perf_counter() - t
            seconds["lbfgs"] += dt
            _append(rows, ids, p, "lbfgs", None, True, model, x, r.adversarial, y, r.iterations, dt, window, nan,
                    c=r.c, success=r.success)
            minimal["lbfgs"][sl] = r.adversarial.cpu()
            bar.update(len(ids))
        if "iaa" in cfg.enabled:
            t = time.perf_counter()
            ia = cfg.iaa
            r = iaa(model, x, y, ia.k, ia.m, ia.delta, ia.d_max, ia.window, ia.margin, ia.max_iterations)
            dt = time.perf_counter() - t
            seconds["iaa"] += dt
            _append(rows, ids, p, "iaa", None, True, model, x, r.adversarial, y, r.iterations, dt, window, nan,
                    success=r.success)
            minimal["iaa"][sl] = r.adversarial.cpu()
            bar.update(len(ids))
    bar.close()
    return AttackOutput(rows, minimal, seconds)
