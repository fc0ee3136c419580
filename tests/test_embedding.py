"""The feature map: penultimate features, PCA and t-SNE fitted on clean images, adversarials placed
without refitting, how faithful a map is, nearest neighbours in feature space."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compute import embedding
from compute.models import build_model


def blobs(seed: int = 0, per: int = 30, dims: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(3, dims))
    return np.concatenate([c + rng.normal(0, 1, size=(per, dims)) for c in centres])


def test_features_are_what_the_last_linear_layer_reads():
    torch.manual_seed(0)
    model = build_model("mnist-cnn", (1, 28, 28), tuple("0123456789"), 0.25, (0.13,), (0.31,)).eval()
    x = torch.rand(5, 1, 28, 28)
    found = embedding.features(model, x, batch_size=2)
    assert found.shape == (5, 32 * 7 * 7)
    with torch.no_grad():
        assert torch.allclose(model.layers.fc(torch.from_numpy(found)), model(x), atol=1e-5)
        assert not model.training  # dropout off


def test_pca_map_is_the_exact_projection_on_the_top_two_components():
    clean = blobs()
    maps = embedding.project(clean, {}, pca_components=10, perplexity=10, seed=0)
    centred = clean - clean.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    signs = np.sign((maps.clean["pca"] * expected).sum(0))  # a component's sign is arbitrary
    assert np.allclose(maps.clean["pca"] * signs, expected, atol=1e-8)


def test_adversarials_are_placed_without_refitting_and_independently_of_each_other():
    clean = blobs()
    rng = np.random.default_rng(1)
    moved = clean[:6] + rng.normal(0, 0.5, size=(6, clean.shape[1]))
    together = embedding.project(clean, {"a": moved}, pca_components=10, perplexity=10, seed=0)
    apart = embedding.project(clean, {"a": moved[:2], "b": moved[2:]}, pca_components=10, perplexity=10, seed=0)
    alone = embedding.project(clean, {}, pca_components=10, perplexity=10, seed=0)
    for method in embedding.METHODS:
        # The clean map does not depend on what is placed in it.
        assert np.array_equal(together.clean[method], alone.clean[method])
        placed = np.concatenate([apart.placed[method]["a"], apart.placed[method]["b"]])
        assert np.allclose(together.placed[method]["a"], placed, atol=1e-6)
    assert 0 < together.explained <= 1  # the 2-D PCA map says how much of the variance it keeps


def test_faithfulness_counts_moves_into_another_class_and_never_the_own_original():
    """An image moved into another blob has that blob's images as nearest neighbours (a faithful map
    shows it there); one moved a little stays among its own class. The own original never counts."""
    clean = blobs(per=30)
    labels = np.repeat([0, 1, 2], 30)
    ids = np.arange(90) + 1000
    moved = np.concatenate([clean[30:36] + 0.1, clean[:4] + 0.1])  # 6 images of class 1 nudged, 4 of class 0
    target = np.array([0] * 6 + [1] * 4)  # the class each was "fooled" into
    # Class-1 images that stay in blob 1 are not of their adversarial class 0; class-0 ones likewise.
    assert embedding.faithfulness(clean, ids, moved, ids[list(range(30, 36)) + [0, 1, 2, 3]], target, labels) == 0.0
    carried = clean[60:66] + 0.1  # images moved all the way into blob 2, fooled into class 2
    assert embedding.faithfulness(clean, ids, carried, ids[:6], np.full(6, 2), labels) == 1.0
    # With its own original counted, a 1-image "class" would vote for itself: it must be left out.
    lone_labels = labels.copy()
    lone_labels[0] = 7
    assert embedding.faithfulness(clean, ids, clean[:1] + 0.01, ids[:1], np.array([7]), lone_labels) == 0.0


def test_neighbours_are_the_nearest_other_images():
    points = blobs(per=10, dims=5)
    idx, dist = embedding.neighbours(points, 5)
    full = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(full, np.inf)
    assert np.array_equal(idx, np.argsort(full, axis=1, kind="stable")[:, :5])
    assert np.allclose(dist, np.sort(full, axis=1)[:, :5])
    assert (idx != np.arange(len(points))[:, None]).all()


def test_tiny_sets_get_a_perplexity_they_can_have():
    maps = embedding.project(blobs(per=4), {}, pca_components=50, perplexity=30, seed=0)
    assert maps.clean["tsne"].shape == (12, 2) and np.isfinite(maps.clean["tsne"]).all()


@pytest.mark.parametrize("bad", [{"pca_components": 1}, {"perplexity": 0}, {"neighbours": -1}])
def test_bad_embedding_settings_name_the_section(bad):
    from compute import config

    with pytest.raises(config.ConfigError, match="embedding"):
        config.from_dict({"embedding": bad})


def test_an_attack_with_no_images_in_a_shard_places_no_points():
    clean = blobs()
    maps = embedding.project(clean, {"a": np.zeros((0, clean.shape[1]))}, pca_components=10, perplexity=10, seed=0)
    assert all(maps.placed[m]["a"].shape == (0, 2) for m in embedding.METHODS)
