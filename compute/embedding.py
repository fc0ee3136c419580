"""A map of what each model sees: the penultimate features of every test image, projected to 2-D.

Features are the input of the model's last linear layer with dropout off (MNIST CNN: the 1,568
flattened conv2 outputs; AlexNet: the 4,096 outputs of fc2). Per model:
- ``pca``: exact PCA (full SVD) to 2 components, fitted on the clean test images, which projects each
  attack's minimal and confident adversarials too;
- ``tsne``: t-SNE (openTSNE, exact nearest neighbours) of the first ``pca_components`` principal
  components, fitted on the clean images; the adversarials placed with openTSNE's ``transform``.
``faithfulness`` says how far a map can be trusted: for each adversarial set, the share whose nearest
clean images are mostly of the adversarial class, in the map against in feature space. ``neighbours`` are each clean image's nearest other
clean images in the full feature space (Euclidean).

Only ``features`` needs torch; the rest is numpy, scikit-learn and openTSNE, run at assembly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from .models import Classifier

METHODS = ("pca", "tsne")


def feature_size(model: Classifier) -> int:
    """D: how many penultimate features the model has (the inputs of its last ``nn.Linear``)."""
    from torch import nn

    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1].in_features


def features(model: Classifier, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Penultimate features (N, D) float32 of ``images`` (N, C, H, W) in [0, 1], dropout off: the
    input of the model's last ``nn.Linear``."""
    import torch
    from torch import nn

    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    seen: list[torch.Tensor] = []
    hook = last.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].detach().float().cpu()))
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                model(images[start:start + batch_size])
    finally:
        hook.remove()
    if not seen:
        return np.zeros((0, feature_size(model)), dtype=np.float32)
    return torch.cat(seen).reshape(len(images), -1).numpy()


@dataclass(frozen=True)
class Maps:
    """One model's maps: per method, the clean images' (N, 2) coordinates and each placed set's."""

    clean: dict[str, np.ndarray]  # method -> (N, 2)
    placed: dict[str, dict[str, np.ndarray]]  # method -> condition -> (M, 2)
    explained: float  # share of the features' variance the 2-D PCA map explains


def project(clean: np.ndarray, placed: dict[str, np.ndarray], pca_components: int, perplexity: float,
            seed: int, threads: int = 1) -> Maps:
    """Fit PCA and t-SNE on ``clean`` features (N, D); place each array of ``placed`` (condition ->
    (M, D)) in both maps without refitting.

    openTSNE's ``transform`` starts a new point at its nearest reference points, its own original among
    them, so an adversarial tends to stay near its original on the t-SNE map: ``faithfulness`` measures
    by how much (fitting clean and adversarial points together was measured on the demo and was less
    faithful still, docs/benchmarks.md)."""
    from openTSNE import TSNE
    from sklearn.decomposition import PCA

    clean = np.asarray(clean, dtype=np.float64)
    placed = {c: np.asarray(x, dtype=np.float64).reshape(-1, clean.shape[1]) for c, x in placed.items()}
    pca2 = PCA(n_components=2, svd_solver="full").fit(clean)
    out = Maps({"pca": pca2.transform(clean)}, {"pca": {c: pca2.transform(x) if len(x) else np.zeros((0, 2))
                                                      for c, x in placed.items()}},
               float(pca2.explained_variance_ratio_.sum()))
    k = int(min(pca_components, clean.shape[1], len(clean)))
    reduce = PCA(n_components=k, svd_solver="full").fit(clean)
    # openTSNE needs perplexity < N / 3; tiny test sets get what they can have.
    usable = float(min(perplexity, max((len(clean) - 1) / 3.0 - 1e-6, 1.0)))
    tsne = TSNE(perplexity=usable, neighbors="exact", random_state=seed, n_jobs=threads, verbose=False)
    fitted = tsne.fit(reduce.transform(clean))
    # openTSNE's transform first centres the fitted map on its bounding box, in place; centred here
    # once, the clean coordinates and every placed set share one frame, whatever is placed.
    fitted -= (np.max(fitted, axis=0) + np.min(fitted, axis=0)) / 2
    out.clean["tsne"] = np.array(fitted, dtype=np.float64)
    out.placed["tsne"] = {c: np.asarray(fitted.transform(reduce.transform(x))) if len(x) else np.zeros((0, 2))
                          for c, x in placed.items()}
    return out


def faithfulness(clean: np.ndarray, clean_ids: np.ndarray, adversarial: np.ndarray, adversarial_ids: np.ndarray,
                 adversarial_class: np.ndarray, clean_labels: np.ndarray, k: int = 10) -> float:
    """Share of the adversarials whose ``k`` nearest clean images (Euclidean, in whatever space the
    rows are: features or map; the adversarial's own original left out) are mostly (more than half) of
    the adversarial's class: how far an attack really moved an image towards the class it fools into."""
    from sklearn.neighbors import NearestNeighbors

    if len(adversarial) == 0 or len(clean) <= k:
        return float("nan")
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(np.asarray(clean, dtype=np.float64))
    _, idx = nn.kneighbors(np.asarray(adversarial, dtype=np.float64))
    own = clean_ids[idx] == np.asarray(adversarial_ids)[:, None]
    kept = np.array([row[~mine][:k] for row, mine in zip(idx, own)])  # the own original left out
    votes = (clean_labels[kept] == np.asarray(adversarial_class)[:, None]).sum(axis=1)
    return float(np.mean(votes > k / 2))


def neighbours(clean: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions (N, k), distances (N, k)) of each row's k nearest other rows, nearest first (ties:
    lower position first)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(clean) - 1)
    if k < 1:
        return np.zeros((len(clean), 0), dtype=np.int64), np.zeros((len(clean), 0))
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(np.asarray(clean, dtype=np.float64))
    dist, idx = nn.kneighbors()  # without arguments: each point's neighbours other than itself
    return idx, dist
