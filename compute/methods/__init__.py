"""Uncertainty methods: which models a run has, and how their per-pass probabilities are drawn.

Each method is one file with
- ``plan(cfg) -> {tag: {"label", "dropout_p", "members"}}``: the models it needs (``cfg``: the
  RunConfig), each by the tag that sets it apart (its key is ``contract.model_key(architecture, tag)``:
  ``cnn-p0.2``, ``cnn-deep5``), a label a reader sees, its dropout rate at inference (None if it has
  none) and its checkpoints' training: a list of ``{"seed_offset", "share", "dropout_p"}``, one per
  member (MC dropout: one; an ensemble: M, see compute/methods/ensemble.py);
- ``pass_probs(model, images, image_ids, passes, seed, positions=None) -> (n, T, C)``: per-pass softmax
  probabilities for images (n, C, H, W) in [0, 1]; the image ids key any randomness, so an image's
  passes depend neither on its batch nor on which of its versions (clean, adversarial, noise) is passed.
Every per-image measure (entropy, mutual information, variation ratio, the seed's confidence and
true_prob...) is computed from those in one place, compute/metrics.py ``image_measures``. Adding a
method is one file here and one line in ``METHODS`` (docs/architecture.md, "Adding an uncertainty
method"); ``uncertainty.methods`` in the config lists the ones a run compares. Method names and their
labels are in compute/contract.py (``METHOD_LABELS``), which the config and the site read without torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..contract import METHOD_LABELS
from . import deep_ensemble, mc_dropout, subset_ensemble

PassProbs = Callable[..., torch.Tensor]  # (model, images, image_ids, passes, seed, positions=None) -> (n, T, C)


@dataclass(frozen=True)
class Method:
    plan: Callable[..., dict[str, dict[str, Any]]]  # plan(run_cfg) -> {tag: {label, dropout_p, members}}
    pass_probs: PassProbs


METHODS: dict[str, Method] = {
    "mc_dropout": Method(mc_dropout.plan, mc_dropout.pass_probs),
    "deep_ensemble": Method(deep_ensemble.plan, deep_ensemble.pass_probs),
    "subset_ensemble": Method(subset_ensemble.plan, subset_ensemble.pass_probs),
}
assert set(METHODS) == set(METHOD_LABELS), "every registered method needs its label in contract.METHOD_LABELS"
