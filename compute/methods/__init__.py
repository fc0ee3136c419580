"""Uncertainty methods: which models a run has, and how their per-pass probabilities are drawn.

Each method is one file with
- ``plan(model_cfg) -> {tag: {"label", "dropout_p", "seed_offset"}}``: the models it needs, each by the
  tag that sets it apart (its key is ``contract.model_key(architecture, tag)``: ``cnn-p0.2``), a label a
  reader sees, its dropout rate (None if it has none) and the offset of its training seed;
- ``pass_probs(model, images, image_ids, passes, seed, positions=None) -> (n, T, C)``: per-pass softmax
  probabilities for images (n, C, H, W) in [0, 1]; the image ids key any randomness, so an image's
  passes depend neither on its batch nor on which of its versions (clean, adversarial, noise) is passed.
Every per-image measure (entropy, mutual information, variation ratio, the seed's confidence and
true_prob...) is computed from those in one place, compute/metrics.py ``image_measures``. Adding a
method is one file here and one line in ``METHODS`` (docs/architecture.md, "Adding an uncertainty
method"); ``model.method`` in the config picks it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from . import mc_dropout

PassProbs = Callable[..., torch.Tensor]  # (model, images, image_ids, passes, seed, positions=None) -> (n, T, C)


@dataclass(frozen=True)
class Method:
    plan: Callable[..., dict[str, dict[str, Any]]]  # plan(model_cfg) -> {tag: {label, dropout_p, seed_offset}}
    pass_probs: PassProbs


METHODS: dict[str, Method] = {
    "mc_dropout": Method(mc_dropout.plan, mc_dropout.pass_probs),
}
