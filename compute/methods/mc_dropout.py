"""Monte Carlo dropout (Gal & Ghahramani, ICML 2016): T stochastic passes per image with dropout on
and everything else in eval mode, each image's masks keyed by its id (compute/masks.py).

``pass_probs`` is the method's entry in the registry (compute/methods/__init__.py); the measures
computed from the passes live in compute/metrics.py (numpy only).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..masks import dropout_masks
from ..models import Classifier, KeyedDropout


class NumericsError(RuntimeError):
    """A model produced NaN or infinite outputs; the message lists the affected image ids."""


class MaskedPasses:
    """What ``mc_dropout`` with image ids yields: ``select(positions)`` makes the following forwards cover
    only those of its images (positions into its ids), with the same masks; ``repeat_dropped(layer, z)``
    is ``layer(repeat_passes(z))`` in one product, for the first dropout layer of a cached forward."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.positions: torch.Tensor | None = None
        self.masks: Callable[[KeyedDropout, torch.Tensor], torch.Tensor] | None = None  # set by mc_dropout

    def select(self, positions: Sequence[int] | torch.Tensor | None) -> MaskedPasses:
        self.positions = None if positions is None else torch.as_tensor(positions, dtype=torch.long)
        return self

    def repeat_dropped(self, layer: nn.Module, z: torch.Tensor, passes: int) -> torch.Tensor:
        """(passes * n, ...) pass-major: ``z`` (n, ...) under each pass's masks of ``layer``."""
        if self.masks is None or not isinstance(layer, KeyedDropout) or not layer.training or layer.p == 0.0:
            return layer(repeat_passes(z, passes))
        masks = self.masks(layer, z)  # (passes, n, *z's dims in memory order)
        if _channels_last(z):
            n, c, h, w = z.shape
            return (masks * z.permute(0, 2, 3, 1)).reshape(passes * n, h, w, c).permute(0, 3, 1, 2)
        return (masks * z).reshape(passes * z.shape[0], *z.shape[1:])


@contextmanager
def mc_dropout(model: nn.Module, image_ids: Sequence[int] | None = None, passes: int = 1,
               seed: int | str = 0) -> Iterator[MaskedPasses]:
    """Dropout modules on, everything else in eval mode; the previous modes come back on exit.

    With ``image_ids`` (B of them) every forward inside must see ``passes * n`` rows laid out
    pass-major (row t*n + j is pass t of the j-th selected image; all B unless ``select`` chose n),
    and each image's masks come from ``masks.dropout_masks``, keyed by (seed, image id, layer, pass,
    unit) and made on the activations' device: an image's result depends neither on its batch nor on
    which condition (clean, adversarial, noise) is run through the masks. The masks are made once per
    layer and reused by every forward inside the context.
    """
    modes = {m: m.training for m in model.modules()}
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    model.eval()
    for m in dropouts:
        m.train()
    ids = None if image_ids is None else [int(i) for i in image_ids]
    handle = MaskedPasses(model)
    drawn: dict[int, torch.Tensor] = {}  # layer index -> (passes, B, *features) multipliers
    laid_out: dict[int, torch.Tensor] = {}  # the same as (passes, B, H, W, C), for channels-last inputs

    def selected(layer: KeyedDropout, z: torch.Tensor) -> torch.Tensor:
        """The selected images' masks for one pass's input ``z`` (n, ...): (passes, n, ...) with the
        feature dims in ``z``'s memory order."""
        assert ids is not None
        if layer.index not in drawn:
            drawn[layer.index] = dropout_masks(ids, passes, tuple(z.shape[1:]), layer.p, seed, layer.index, z.device)
        full = drawn[layer.index]
        n = full.shape[1] if handle.positions is None else len(handle.positions)
        if z.shape[0] != n or tuple(z.shape[1:]) != tuple(full.shape[2:]):
            raise ValueError(f"mc_dropout expected {passes} x {n} rows of {tuple(full.shape[2:])}, "
                             f"got {passes} x {tuple(z.shape)}")
        if _channels_last(z):
            # A product of two tensors in one memory layout is several times faster than across layouts:
            # keep the masks channels-last too (stored (passes, B, H, W, C)), so selecting rows is one copy.
            if layer.index not in laid_out:
                laid_out[layer.index] = full.permute(0, 1, 3, 4, 2).contiguous()
            full = laid_out[layer.index]
        return full if handle.positions is None else full[:, handle.positions.to(z.device)]

    def source(layer: KeyedDropout, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] % passes:
            raise ValueError(f"mc_dropout expected {passes} passes of rows, got {tuple(x.shape)}")
        masks = selected(layer, x[: x.shape[0] // passes])
        if _channels_last(x):
            c, h, w = x.shape[1:]
            return masks.reshape(x.shape[0], h, w, c).permute(0, 3, 1, 2)
        return masks.reshape(x.shape)

    keyed = [m for m in dropouts if isinstance(m, KeyedDropout)]
    if ids is not None:
        handle.masks = selected
        for m in keyed:
            m.mask_source = source
    try:
        yield handle
    finally:
        # handle.masks closes over handle: break the cycle, or every context's masks wait for the
        # cyclic garbage collector (gigabytes on a long run).
        handle.masks = None
        drawn.clear()
        laid_out.clear()
        for m in keyed:
            m.mask_source = None
        for m, mode in modes.items():
            m.train(mode)


def _channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def repeat_passes(z: torch.Tensor, passes: int) -> torch.Tensor:
    """``z`` (n, ...) repeated pass-major to (passes * n, ...), in ``z``'s memory layout."""
    if _channels_last(z):
        n, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).unsqueeze(0).expand(passes, n, h, w, c).reshape(passes * n, h, w, c)
        return flat.permute(0, 3, 1, 2)
    return z.repeat(passes, *([1] * (z.dim() - 1)))


def _forward(model: Classifier, images: torch.Tensor, passes: int, cache: bool,
             mc: MaskedPasses | None = None) -> torch.Tensor:
    """Logits (passes, B, C) of ``passes`` stochastic passes under an active ``mc_dropout`` (``mc``: its
    handle, when keyed)."""
    if cache:
        prefix, suffix = model.split_at_first_dropout()
        z = prefix(images)
        if mc is not None and len(suffix) > 0:
            # The first dropout repeats and masks the cached activations in one product.
            first, *rest = suffix.children()
            logits = mc.repeat_dropped(first, z, passes)
            for module in rest:
                logits = module(logits)
        else:
            logits = suffix(repeat_passes(z, passes))
    else:
        logits = model(images.repeat(passes, 1, 1, 1))
    return logits.view(passes, images.shape[0], -1)


def _check(logits: torch.Tensor, image_ids: Sequence[int]) -> None:
    bad = ~torch.isfinite(logits).all(dim=2).all(dim=0)
    if bad.any():
        ids = [int(image_ids[i]) for i in torch.nonzero(bad).flatten().tolist()]
        raise NumericsError(f"the model gave NaN or infinite logits for image ids {ids[:20]}"
                            f"{' ...' if len(ids) > 20 else ''}; check the checkpoint and the input data")


CPU_CHUNK = 8  # images per forward on the CPU: 8 x 50 passes of activations stay in cache (measured best)


@torch.no_grad()
def mc_probs(model: Classifier, images: torch.Tensor, image_ids: Sequence[int], passes: int, seed: int | str,
             cache: bool = True, positions: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
    """Softmax outputs of ``passes`` stochastic passes for a batch: (passes, n, C), float32.

    ``images`` (n, C, H, W) are images of the batch ``image_ids`` at ``positions`` (None: all of
    them, in order); positions may repeat, so several versions of an image (clean, adversarial,
    noise) go through its masks, which are drawn once per call. With ``cache`` the layers before the
    first dropout run once per image and their output is repeated ``passes`` times; without it the
    whole model runs on the repeated images. Both use the same keyed masks, so they agree to float
    rounding.
    """
    at = torch.arange(len(image_ids)) if positions is None else torch.as_tensor(np.asarray(positions), dtype=torch.long)
    step = CPU_CHUNK if images.device.type == "cpu" else max(len(at), 1)
    chunks = []
    with mc_dropout(model, image_ids, passes, seed) as mc:
        for start in range(0, len(at), step):
            mc.select(at[start:start + step])
            logits = _forward(model, images[start:start + step], passes, cache, mc)
            _check(logits, [image_ids[int(r)] for r in at[start:start + step]])
            chunks.append(torch.softmax(logits.float(), dim=2))
    return torch.cat(chunks, dim=1) if chunks else torch.zeros((passes, 0, 0))


def plan(cfg: Any) -> dict[str, dict[str, Any]]:
    """The registry's plan: one model per dropout rate of ``cfg.model.dropout``, tagged ``p0.2`` and
    labelled "MC dropout p = 0.2", one checkpoint trained on the whole training set with its own seed
    offset (its place in the list)."""
    return {f"p{p:g}": {"label": f"MC dropout p = {p:g}", "dropout_p": p,
                        "members": [{"seed_offset": i, "share": 1.0, "dropout_p": p}]}
            for i, p in enumerate(cfg.model.dropout)}


def pass_probs(model: Classifier, images: torch.Tensor, image_ids: Sequence[int], passes: int, seed: int | str,
               positions: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
    """The registry's entry: per-pass softmax outputs (n, passes, C) of ``mc_probs``."""
    return mc_probs(model, images, image_ids, passes, seed, positions=positions).permute(1, 0, 2)
