"""The 8-bit grid, in one place: every image the project measures, shows or stores is 8-bit.

An attack's output is put on the k/255 grid (``to_grid``) before its success is decided; stored and
tiled images are uint8 (``to_uint8``); uint8 pixels become floats in [0, 1] only through ``to_float``.
"""
from __future__ import annotations

import numpy as np
import torch

LEVELS = 255  # the largest 8-bit value: pixel k/255 is stored as k


def to_grid(images: torch.Tensor, original: torch.Tensor | None = None) -> torch.Tensor:
    """``images`` on the k/255 grid, as they are saved and shown: every attack judges success on this.

    Alone, each pixel is rounded to the nearest level. With ``original`` (itself 8-bit), each
    pixel's change is rounded toward zero to whole levels, so a budget on the change (FGSM's
    epsilon) still holds after rounding.
    """
    if original is None:
        return (images.clamp(0.0, 1.0) * LEVELS).round() / LEVELS
    change = (images - original) * LEVELS
    change = torch.trunc(change + change.sign() * 1e-3)  # 1e-3: float error must not drop a whole level
    return ((original * LEVELS).round() + change).clamp(0, LEVELS) / LEVELS


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float images in [0, 1] (on the grid or not) as uint8, rounded to the nearest level, on the host."""
    return (images.detach().cpu().float().clamp(0, 1) * LEVELS).round().to(torch.uint8).numpy()


def to_float(pixels: torch.Tensor | np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 pixels as float32 in [0, 1] (on ``device``)."""
    x = torch.as_tensor(pixels)
    if device is not None:
        x = x.to(device)
    return x.float().div_(float(LEVELS))
