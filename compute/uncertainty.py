"""Monte Carlo dropout: T stochastic passes per image with dropout on and everything else in eval mode.

The measures computed from the passes live in compute/metrics.py (numpy only).
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from .models import Classifier, KeyedDropout


class NumericsError(RuntimeError):
    """A model produced NaN or infinite outputs; the message lists the affected image ids."""


def mask_key(seed: int, image_id: int, layer: int) -> int:
    """63-bit generator seed for one image's dropout masks in one layer."""
    digest = hashlib.sha256(f"robustviz-mc:{seed}:{image_id}:{layer}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@contextmanager
def mc_dropout(model: nn.Module, image_ids: Sequence[int] | None = None, passes: int = 1,
               seed: int = 0) -> Iterator[nn.Module]:
    """Dropout modules on, everything else in eval mode; the previous modes come back on exit.

    With ``image_ids`` (B of them) every forward inside must see ``passes * B`` rows laid out
    pass-major (row t*B + b is pass t of image b), and each image's masks are drawn from a
    generator keyed by (seed, image_id, layer): an image's result does not depend on its batch.
    """
    modes = {m: m.training for m in model.modules()}
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    model.eval()
    for m in dropouts:
        m.train()
    ids = None if image_ids is None else [int(i) for i in image_ids]

    def source(layer: KeyedDropout, shape: torch.Size) -> torch.Tensor:
        assert ids is not None
        if shape[0] != passes * len(ids):
            raise ValueError(f"mc_dropout expected {passes} x {len(ids)} rows, got {shape[0]}")
        keep = torch.empty((passes, len(ids), *shape[1:]), dtype=torch.bool)
        gen = torch.Generator()
        for b, image_id in enumerate(ids):
            gen.manual_seed(mask_key(seed, image_id, layer.index))
            keep[:, b] = torch.rand((passes, *shape[1:]), generator=gen) >= layer.p
        return keep.reshape(shape)

    keyed = [m for m in dropouts if isinstance(m, KeyedDropout)]
    if ids is not None:
        for m in keyed:
            m.mask_source = source
    try:
        yield model
    finally:
        for m in keyed:
            m.mask_source = None
        for m, mode in modes.items():
            m.train(mode)


@torch.no_grad()
def mc_probs(model: Classifier, images: torch.Tensor, image_ids: Sequence[int], passes: int, seed: int,
             cache: bool = True) -> torch.Tensor:
    """Softmax outputs of ``passes`` stochastic passes for a batch: (passes, B, C), float32.

    With ``cache`` the layers before the first dropout run once per image and their output is
    repeated ``passes`` times; without it the whole model runs on the repeated images. Both use
    the same keyed masks, so they agree to float rounding.
    """
    with mc_dropout(model, image_ids, passes, seed):
        if cache:
            prefix, suffix = model.split_at_first_dropout()
            z = prefix(images)
            logits = suffix(z.repeat(passes, *([1] * (z.dim() - 1))))
        else:
            logits = model(images.repeat(passes, 1, 1, 1))
    logits = logits.view(passes, images.shape[0], -1)
    bad = ~torch.isfinite(logits).all(dim=2).all(dim=0)
    if bad.any():
        ids = [int(image_ids[i]) for i in torch.nonzero(bad).flatten().tolist()]
        raise NumericsError(f"the model gave NaN or infinite logits for image ids {ids[:20]}"
                            f"{' ...' if len(ids) > 20 else ''}; check the checkpoint and the input data")
    return torch.softmax(logits.float(), dim=2)
