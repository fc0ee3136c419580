"""A map of what each model sees: the penultimate features of every test image, projected to 2-D.

Features are the input of the model's last linear layer with dropout off (MNIST CNN: the 1,568
flattened conv2 outputs; AlexNet: the 4,096 outputs of fc2). Per model, both maps are fitted on the
*reference* images (``embedding.reference_images`` training images, evenly spaced), and every test
image and every adversarial is placed in them without refitting:
- ``pca``: exact PCA (full SVD) to 2 components;
- ``tsne``: t-SNE (openTSNE, exact nearest neighbours) of the first ``pca_components`` principal
  components; test images and adversarials placed with openTSNE's ``transform``, each started at the
  similarity-weighted mean of its nearest reference points.
No test image is a reference point, so an adversarial is not started at its own original (fitted on the
test images, t-SNE pinned each adversarial there: docs/benchmarks.md). ``faithfulness`` says how far
a map can be trusted: for each adversarial set, the share whose nearest clean test images are mostly of
the adversarial class, in the map against in feature space. ``neighbours`` are each clean image's
nearest other clean images in the full feature space (Euclidean).

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
    """One model's maps: per method, the reference images' (R, 2) coordinates and each placed set's."""

    reference: dict[str, np.ndarray]  # method -> (R, 2)
    placed: dict[str, dict[str, np.ndarray]]  # method -> condition -> (M, 2)
    explained: float  # share of the reference features' variance the 2-D PCA map explains


def reference_positions(n_train: int, count: int) -> np.ndarray:
    """Positions in the training set of the reference images: ``count`` evenly spaced (every image when
    the set has no more), so that every class has its share of a set stored class by class."""
    if n_train <= count:
        return np.arange(n_train, dtype=np.int64)
    return np.linspace(0, n_train - 1, count).round().astype(np.int64)


def project(reference: np.ndarray, placed: dict[str, np.ndarray], pca_components: int, perplexity: float,
            seed: int, threads: int = 1) -> Maps:
    """Fit PCA and t-SNE on the ``reference`` features (R, D); place each array of ``placed``
    (condition -> (M, D): the clean test images, each adversarial set) in both maps without refitting.
    Each placed point depends only on the reference and itself, not on what else is placed."""
    from openTSNE import TSNE
    from sklearn.decomposition import PCA

    reference = np.asarray(reference, dtype=np.float64)
    placed = {c: np.asarray(x, dtype=np.float64).reshape(-1, reference.shape[1]) for c, x in placed.items()}
    # The covariance's eigendecomposition (D x D) is as exact as a full SVD of the R x D features and,
    # measured on the demo (R = 1,000, D = 1,568), faster; with many more features than images (AlexNet's
    # D = 4,096) its O(D^3) is not: 21 s per fit for 12 images against well under 1 s for the SVD.
    solver = "covariance_eigh" if reference.shape[1] <= 2 * len(reference) else "full"
    pca2 = PCA(n_components=2, svd_solver=solver).fit(reference)
    out = Maps({"pca": pca2.transform(reference)},
               {"pca": {c: pca2.transform(x) if len(x) else np.zeros((0, 2)) for c, x in placed.items()}},
               float(pca2.explained_variance_ratio_.sum()))
    k = int(min(pca_components, reference.shape[1], len(reference)))
    reduce = PCA(n_components=k, svd_solver=solver).fit(reference)
    # openTSNE needs perplexity < R / 3; small reference sets get what they can have.
    usable = float(min(perplexity, max((len(reference) - 1) / 3.0 - 1e-6, 1.0)))
    tsne = TSNE(perplexity=usable, neighbors="exact", random_state=seed, n_jobs=threads, verbose=False)
    fitted = tsne.fit(reduce.transform(reference))
    # openTSNE's transform first centres the fitted map on its bounding box, in place; centred here
    # once, the reference and every placed set share one frame, whatever is placed.
    fitted -= (np.max(fitted, axis=0) + np.min(fitted, axis=0)) / 2
    out.reference["tsne"] = np.array(fitted, dtype=np.float64)
    # "weighted" starts a point at the similarity-weighted mean of its nearest reference points, not
    # their median: measured on the demo, the map's 10-NN adversarial-class shares then stay within
    # 0.10 of the feature space's on every confident set (0.074 and 0.098 in two runs), docs/benchmarks.md.
    # openTSNE optimises each new point against the reference alone (fixed learning rate, per-point
    # clipping), so every set is placed in one call: the reference's tree is built once per iteration.
    names = [c for c, x in placed.items() if len(x)]
    out.placed["tsne"] = {c: np.zeros((0, 2)) for c in placed}
    if names:
        together = np.asarray(fitted.transform(reduce.transform(np.concatenate([placed[c] for c in names])),
                                               initialization="weighted"))
        cuts = np.cumsum([len(placed[c]) for c in names])[:-1]
        out.placed["tsne"].update(dict(zip(names, np.split(together, cuts))))
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
