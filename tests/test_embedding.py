"""The feature map: penultimate features, PCA and t-SNE fitted on reference (training) images, test
images and adversarials placed without refitting, how faithful a map is, nearest neighbours in feature
space."""
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


def test_pca_map_is_the_exact_projection_on_the_reference_images_top_two_components():
    reference, test = blobs(seed=0), blobs(seed=0, per=5) + 0.3
    maps = embedding.project(reference, {"clean": test}, pca_components=10, perplexity=10, seed=0)
    mean = reference.mean(0)
    _, _, vt = np.linalg.svd(reference - mean, full_matrices=False)
    signs = np.sign((maps.reference["pca"] * ((reference - mean) @ vt[:2].T)).sum(0))  # a component's sign is arbitrary
    for got, rows in ((maps.reference["pca"], reference), (maps.placed["pca"]["clean"], test)):
        assert np.allclose(got * signs, (rows - mean) @ vt[:2].T, atol=1e-8)


def test_placed_sets_are_placed_without_refitting_and_independently_of_each_other():
    reference = blobs()
    rng = np.random.default_rng(1)
    moved = reference[:6] + rng.normal(0, 0.5, size=(6, reference.shape[1]))
    together = embedding.project(reference, {"a": moved}, pca_components=10, perplexity=10, seed=0)
    apart = embedding.project(reference, {"a": moved[:2], "b": moved[2:]}, pca_components=10, perplexity=10, seed=0)
    alone = embedding.project(reference, {}, pca_components=10, perplexity=10, seed=0)
    for method in embedding.METHODS:
        # The map's frame (the reference points) does not depend on what is placed in it.
        assert np.array_equal(together.reference[method], alone.reference[method])
        placed = np.concatenate([apart.placed[method]["a"], apart.placed[method]["b"]])
        assert np.allclose(together.placed[method]["a"], placed, atol=1e-6)
    assert 0 < together.explained <= 1  # the 2-D PCA map says how much of the variance it keeps


def test_the_map_shows_an_image_moved_into_another_class_where_its_features_are():
    """The map must not pin a moved image to its original. Test images of three classes and their
    "adversarials" (each moved most of the way towards the next class's centre, or a little) are placed
    in a map fitted on other images of the classes: the share whose 10 nearest test images are mostly
    of the class moved into is the same on the t-SNE map as in feature space (the fix for an
    adversarial started at its own original, which kept them all in their own class on the map)."""
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 6, size=(3, 20))
    def draw(per):  # noqa: E306
        return np.concatenate([c + rng.normal(0, 1, size=(per, 20)) for c in centres]), np.repeat([0, 1, 2], per)
    reference, _ = draw(60)
    test, labels = draw(30)
    ids = np.arange(len(test))
    target = (labels + 1) % 3
    share = np.where(np.arange(len(test)) % 2 == 0, 0.8, 0.15)[:, None]  # far enough to cross, or not
    moved = test + share * (centres[target] - test)
    maps = embedding.project(reference, {"clean": test, "moved": moved}, pca_components=10, perplexity=20, seed=0)
    in_features = embedding.faithfulness(test, ids, moved, ids, target, labels)
    on_map = embedding.faithfulness(maps.placed["tsne"]["clean"], ids, maps.placed["tsne"]["moved"], ids, target, labels)
    assert in_features == pytest.approx(0.5, abs=0.05)  # the far half crossed, the near half did not
    assert on_map == pytest.approx(in_features, abs=0.1)


def test_reference_images_are_evenly_spaced_over_the_training_set():
    assert embedding.reference_positions(20, 5).tolist() == [0, 5, 10, 14, 19]
    assert embedding.reference_positions(4, 10).tolist() == [0, 1, 2, 3]  # all of a small set


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


def test_tiny_reference_sets_get_a_perplexity_they_can_have():
    maps = embedding.project(blobs(per=4), {"clean": blobs(per=2)}, pca_components=50, perplexity=30, seed=0)
    assert maps.reference["tsne"].shape == (12, 2) and np.isfinite(maps.placed["tsne"]["clean"]).all()


@pytest.mark.parametrize("bad", [{"pca_components": 1}, {"perplexity": 0}, {"neighbours": -1},
                                 {"reference_images": 5}])
def test_bad_embedding_settings_name_the_section(bad):
    from compute import config

    with pytest.raises(config.ConfigError, match="embedding"):
        config.from_dict({"embedding": bad})


def test_an_attack_with_no_images_in_a_shard_places_no_points():
    clean = blobs()
    maps = embedding.project(clean, {"a": np.zeros((0, clean.shape[1]))}, pca_components=10, perplexity=10, seed=0)
    assert all(maps.placed[m]["a"].shape == (0, 2) for m in embedding.METHODS)
