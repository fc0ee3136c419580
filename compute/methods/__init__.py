"""Uncertainty methods: how a model's per-pass probabilities are drawn.

A method takes a model, a batch of images (n, C, H, W) in [0, 1] with their image ids (which key any
randomness, so an image's passes do not depend on its batch), a pass count T and a seed, and returns
per-pass softmax probabilities (n, T, C). Every per-image measure (entropy, mutual information,
variation ratio, the seed's confidence and true_prob...) is computed from those in one place,
compute/metrics.py ``image_measures``. Adding a method is one file here and one line in ``METHODS``
(docs/architecture.md, "Adding an uncertainty method").
"""
from __future__ import annotations

from typing import Callable

import torch

from . import mc_dropout

PassProbs = Callable[..., torch.Tensor]  # (model, images, image_ids, passes, seed, positions=None) -> (n, T, C)

METHODS: dict[str, PassProbs] = {
    "mc_dropout": mc_dropout.pass_probs,
}
