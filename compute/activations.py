"""Activation maps: the feature maps after every conv layer, for a selected set of images.

Selected per model: the most robust and the most vulnerable test images of each class (FGSM's
smallest flipping epsilon; never flipped counts as most robust) plus configured ids. Each map
grid is scaled by the largest activation of that image and layer over all conditions (clean and
every attack), so the original and its adversarials compare on one scale.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .models import Classifier


def select_images(labels: np.ndarray, image_ids: np.ndarray, min_eps: np.ndarray, per_class: int,
                  extra_ids: tuple[int, ...]) -> list[int]:
    """Positions (into the test arrays) of the images to map, sorted and unique."""
    score = np.where(np.isnan(min_eps), np.inf, min_eps)  # never flipped = most robust
    chosen: set[int] = set()
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        order = idx[np.lexsort((image_ids[idx], score[idx]))]
        chosen.update(order[:per_class].tolist())
        chosen.update(order[::-1][:per_class].tolist())
    lookup = {int(i): k for k, i in enumerate(image_ids)}
    chosen.update(lookup[i] for i in extra_ids if i in lookup)
    return sorted(chosen)


@torch.no_grad()
def feature_maps(model: Classifier, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Output of every conv layer (after the convolution, before the ReLU): layer -> (B, maps, h, w)."""
    out: dict[str, torch.Tensor] = {}
    wanted = set(model.conv_layers())
    x = model.normalize(images)
    for name, layer in model.layers.named_children():
        x = layer(x)
        if name in wanted:
            out[name] = x.detach().cpu()
        if len(out) == len(wanted):
            break
    return out


def grid(maps: torch.Tensor, scale: float, max_maps: int) -> np.ndarray:
    """One image's maps (maps, h, w) as a uint8 grid (1, rows*h, cols*w), ReLU'd and scaled by ``scale``."""
    maps = maps[:max_maps].clamp_min(0)
    n, h, w = maps.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = torch.zeros(rows * (h + 1) - 1, cols * (w + 1) - 1)
    for k in range(n):
        r, c = divmod(k, cols)
        canvas[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = maps[k]
    values = (canvas / max(scale, 1e-12)).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    return values[None]
