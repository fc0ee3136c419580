"""What the two ensemble methods share: an ensemble of M ordinary checkpoints run as one model.

``Ensemble(members)`` stacks the members' weights (``torch.func.stack_module_state``) and runs every
member in one batched pass (``vmap`` over ``functional_call``): one call, whatever M, on the CPU and
on a GPU (bench/ensemble.py measures it against a Python loop over the members). Its ``forward`` is
the log of the mean of the members' softmax outputs, log p̄(x) = log (1/M) Σ_m softmax(f_m(x)), so
that ``softmax(forward(x))`` is exactly the ensemble's mean prediction: every attack, run against
``forward``, is white-box through all members and judged on the ensemble, and the adaptive attacker
(EOT-PGD) finds no dropout in it and takes its one "pass", which is the exact expectation over members.

The members keep their dropout layers for training; here they are always off (eval mode). The
ensemble holds no dropout module, so nothing treats it as an MC-dropout model. Feature maps and
activation maps are those of its first member (``representative``), as the manifest says.
"""
from __future__ import annotations

import copy
import hashlib
import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..models import Classifier


# Images per grouped pass on the CPU: 16 images' activations for 5 members stay in cache; at 256 the
# batched pass was slower than a loop over members, at 16 faster (bench/ensemble.py, docs/benchmarks.md).
CPU_CHUNK = 16


class Ensemble(nn.Module):
    """M classifiers of one architecture as one model: ``forward(x)`` = log of their mean softmax (N, C).

    The members' layers are laid side by side: each convolution becomes one grouped convolution over
    M times the channels (``groups`` = M x its own), each linear layer one batched matrix product,
    and pooling and ReLU run on the wide tensor as they are. ``meta`` is the first member's metadata
    with ``members`` (M) and ``weights_sha256`` over all of theirs (a part that reads the ensemble
    depends on every member).
    """

    def __init__(self, members: Sequence[Classifier]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        shapes = {tuple((k, tuple(v.shape)) for k, v in m.state_dict().items()) for m in members}
        if len(shapes) != 1:
            raise ValueError("ensemble members must share one architecture (the same weights' names and shapes)")
        self.size = len(members)
        first = members[0]
        # (M, C): kept 2-D, so that .to(memory_format=...) leaves them alone
        self.register_buffer("mean", torch.stack([m.normalize.mean.detach().float().flatten() for m in members]))
        self.register_buffer("std", torch.stack([m.normalize.std.detach().float().flatten() for m in members]))
        self.channels = first.normalize.out_channels
        self.steps: list[tuple[str, Any]] = []  # (kind, settings) in layer order
        # The weights are buffers: the ensemble is never trained, and attacks ask no gradient of them.
        keep = lambda name, value: self.register_buffer(name, value.clone())  # noqa: E731
        for name, module in first.layers.named_children():
            same = [dict(m.layers.named_children())[name] for m in members]
            if isinstance(module, nn.Conv2d):
                keep(f"{name}_weight", torch.cat([m.weight.detach() for m in same]))
                keep(f"{name}_bias", torch.cat([m.bias.detach() for m in same]))
                self.steps.append(("conv", (name, module.stride, module.padding, module.dilation,
                                            module.groups * self.size)))
            elif isinstance(module, nn.Linear):
                keep(f"{name}_weight", torch.stack([m.weight.detach() for m in same]))
                keep(f"{name}_bias", torch.stack([m.bias.detach() for m in same]))
                self.steps.append(("linear", name))
            elif isinstance(module, nn.Flatten):
                self.steps.append(("flatten", None))
            elif isinstance(module, nn.Dropout):
                continue  # off at inference; no dropout module is kept (nothing takes an ensemble for MC dropout)
            elif isinstance(module, (nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d)):
                self.steps.append(("same", copy.deepcopy(module)))  # acts per channel: the wide tensor as it is
            else:
                raise ValueError(f"an ensemble cannot lay out layer {name} ({type(module).__name__}) side by side")
        self._first = [first.eval()]  # kept out of the module tree: the stacked weights are the ensemble's state
        self.meta: dict[str, Any] = dict(first.meta, members=self.size,
                                         weights_sha256=_combined([m.meta.get("weights_sha256", "") for m in members]))

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's logits (M, N, C) in one batched pass, dropout off: of the same images ``x``
        (N, C, H, W), or of each member's own (M, N, C, H, W). On the CPU the images go through in
        chunks of ``CPU_CHUNK``, whose M-wide activations stay in cache (bench/ensemble.py)."""
        n = x.shape[-4]
        if x.device.type == "cpu" and n > CPU_CHUNK:
            dim = 0 if x.dim() == 4 else 1
            return torch.cat([self._members(part) for part in torch.split(x, CPU_CHUNK, dim=dim)], dim=1)
        return self._members(x)

    def _members(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-4]
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        x = x.unsqueeze(1) if x.dim() == 4 else x.transpose(0, 1)
        z = (x - self.mean[None, :, :, None, None]) / self.std[None, :, :, None, None]  # (N, M, C, H, W)
        if z.shape[2] != self.channels:
            z = z.expand(-1, -1, self.channels, -1, -1)
        z = z.reshape(n, -1, *z.shape[3:])
        if channels_last:
            z = z.contiguous(memory_format=torch.channels_last)
        for kind, settings in self.steps:
            if kind == "conv":
                name, stride, padding, dilation, groups = settings
                z = F.conv2d(z, getattr(self, f"{name}_weight"), getattr(self, f"{name}_bias"), stride, padding,
                             dilation, groups)
            elif kind == "flatten":
                z = z.reshape(n, self.size, -1)  # the logical (C, H, W) order of each member's flatten
            elif kind == "linear":
                z = torch.einsum("nmi,moi->nmo", z, getattr(self, f"{settings}_weight")) + \
                    getattr(self, f"{settings}_bias")
            else:
                z = settings(z)
        return z.permute(1, 0, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = torch.log_softmax(self.member_logits(x).float(), dim=2)
        return torch.logsumexp(log_probs, dim=0) - math.log(self.size)

    def representative(self) -> Classifier:
        """The first member, on the ensemble's device: whose feature and activation maps the ensemble shows."""
        return self._first[0].to(self.mean.device)

    def to(self, *args: Any, **kwargs: Any) -> Ensemble:  # type: ignore[override]
        super().to(*args, **kwargs)
        self._first[0].to(*args, **kwargs)
        return self


def _combined(hashes: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def loop_logits(members: Sequence[Classifier], x: torch.Tensor) -> torch.Tensor:
    """The members' logits (M, N, C) by a Python loop, one forward each: the reference the batched
    pass is checked and timed against (tests, bench/ensemble.py)."""
    return torch.stack([m.eval()(x) for m in members])


def representative(model: nn.Module) -> nn.Module:
    """The model whose features and activation maps stand for ``model``: an ensemble's first member,
    any other model itself."""
    return model.representative() if isinstance(model, Ensemble) else model


@torch.no_grad()
def pass_probs(model: Ensemble, images: torch.Tensor, image_ids: Sequence[int], passes: int, seed: int | str,
               positions: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
    """The registry's entry for both ensembles: each member's softmax output (n, M, C), float32, for
    ``images`` (n, C, H, W). Deterministic: ``passes``, ``seed`` and the ids change nothing (an ensemble's
    passes are its members)."""
    if not isinstance(model, Ensemble):
        raise TypeError(f"an ensemble method needs an Ensemble, got {type(model).__name__}")
    chunks = [torch.softmax(model.member_logits(images[s:s + 256]).float(), dim=2)
              for s in range(0, len(images), 256)]
    out = torch.cat(chunks, dim=1) if chunks else torch.zeros((model.size, 0, 0))
    return out.permute(1, 0, 2)


def member_plan(first_offset: int, members: int, share: float, dropout: float) -> list[dict[str, Any]]:
    """The members' training: seed offsets ``first_offset`` + k, each on ``share`` of the training set,
    with dropout ``dropout`` while training (off at inference)."""
    return [{"seed_offset": first_offset + k, "share": share, "dropout_p": dropout} for k in range(members)]


def share_positions(n_train: int, share: float, seed: int) -> np.ndarray:
    """The training-set positions (ascending) a member trained on ``share`` of ``n_train`` images sees:
    round(share * n) of them, drawn without replacement by a generator seeded with ``seed``."""
    if share >= 1.0:
        return np.arange(n_train)
    count = max(1, round(share * n_train))
    return np.sort(np.random.default_rng(seed).permutation(n_train)[:count])
