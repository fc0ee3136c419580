"""Activation maps: the feature maps after every conv layer, for a selected set of images.

Selected per model: the most robust and the most vulnerable test images of each class by the ranking
attack (``attacks.ranking``, FGSM by default: its smallest flipping epsilon; never fooled counts as most
robust) plus configured ids. Each grid is
scaled by the largest activation of that image and layer over all conditions (clean and every
attack), so the original and its adversarials compare on one scale. Only ``feature_maps`` needs
torch; selection and drawing are numpy, so results can be assembled without it.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .ranking import extremes, ranked

if TYPE_CHECKING:
    import torch

    from .config import ActivationsConfig
    from .models import Classifier


def select_images(ranking: pd.DataFrame | None, column: str, labels: np.ndarray, image_ids: np.ndarray,
                  cfg: ActivationsConfig) -> list[int]:
    """Positions (into ``image_ids``) of the images to map for one model, sorted: per class the
    ``cfg.per_class`` most robust and most vulnerable by the ranking attack (compute/ranking.py;
    ``ranking``: its attacks-table rows of this model, None when no ranking attack ran; ``column``: its
    card's ranking column), plus ``cfg.image_ids``.

    Also right for a shard: the global extremes of a class are among the shards' own extremes.
    """
    lookup = {int(i): k for k, i in enumerate(image_ids)}
    chosen = {lookup[i] for i in cfg.image_ids if i in lookup}
    if ranking is not None and not ranking.empty and cfg.per_class:
        scored = ranked(ranking, column)
        label_of = dict(zip(image_ids.tolist(), labels.tolist()))
        scored = scored[scored["image_id"].isin(lookup)]
        for _, group in scored.groupby(scored["image_id"].map(label_of), sort=True):
            robust, vulnerable = extremes(group, cfg.per_class)
            chosen.update(lookup[i] for i in robust + vulnerable)
    return sorted(chosen)


def feature_maps(model: "Classifier", images: "torch.Tensor", max_maps: int) -> dict[str, np.ndarray]:
    """The first ``max_maps`` outputs of every conv layer (after the convolution, before the ReLU):
    layer -> float16 array (B, maps, h, w)."""
    import torch

    out: dict[str, np.ndarray] = {}
    wanted = set(model.conv_layers())
    with torch.no_grad():
        x = model.normalize(images)
        for name, layer in model.layers.named_children():
            x = layer(x)
            if name in wanted:
                out[name] = x[:, :max_maps].detach().cpu().numpy().astype(np.float16)
            if len(out) == len(wanted):
                break
    return out


def grid(maps: np.ndarray, scale: float) -> np.ndarray:
    """One image's maps (maps, h, w) as a uint8 grid (1, rows*(h+1)-1, cols*(w+1)-1), ReLU'd and
    divided by ``scale``; a one-pixel gap separates the maps."""
    maps = np.clip(maps.astype(np.float32), 0, None)
    n, h, w = maps.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = np.zeros((rows * (h + 1) - 1, cols * (w + 1) - 1), dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        canvas[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = maps[k]
    values = np.clip(canvas / max(scale, 1e-12), 0, 1)
    return np.round(values * 255).astype(np.uint8)[None]
