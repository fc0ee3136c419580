"""MC dropout: properties of the per-image measures and the run-level metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from compute.models import build_model
from compute.metrics import calibration_bins, image_measures, run_metrics
from compute.methods.mc_dropout import NumericsError, mc_dropout, mc_probs

CLASSES = tuple(str(i) for i in range(10))


def model(p: float, shape=(1, 28, 28), arch="mnist-cnn", seed=0):
    torch.manual_seed(seed)
    return build_model(arch, shape, CLASSES, p, (0.5,) * shape[0], (0.25,) * shape[0]).eval()


def images(n=12, shape=(1, 28, 28), seed=1):
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


def test_probabilities_sum_to_one_and_bounds_hold():
    x = images()
    probs = mc_probs(model(0.3), x, list(range(len(x))), passes=20, seed=0)
    assert probs.shape == (20, 12, 10)
    assert torch.allclose(probs.sum(-1), torch.ones(20, 12), atol=1e-5)
    labels = np.arange(12) % 10
    m = image_measures(probs.permute(1, 0, 2).numpy(), labels)
    assert np.allclose(m["mean_probs"].sum(1), 1, atol=1e-5)
    assert np.all(m["mutual_info"] >= 0)
    assert np.all(m["mutual_info"] <= m["entropy"] + 1e-9)
    assert np.all(m["entropy"] <= math.log(10) + 1e-9)
    assert np.all((m["variation_ratio"] >= 0) & (m["variation_ratio"] <= 1 - 1 / 20 + 1e-12))
    assert np.all((m["confidence"] <= 1) & (m["confidence"] >= 0.75))  # a variance of values in [0,1] is <= 1/4
    assert np.allclose(m["true_prob"], m["mean_probs"][np.arange(12), labels])


def test_dropout_zero_has_no_variance_and_equals_the_deterministic_pass():
    net, x = model(0.0), images()
    probs = mc_probs(net, x, list(range(len(x))), passes=7, seed=3)
    with torch.no_grad():
        plain = torch.softmax(net(x), 1)
    assert torch.allclose(probs, plain.expand(7, -1, -1), atol=1e-6)
    m = image_measures(probs.permute(1, 0, 2).numpy(), np.zeros(12, dtype=int))
    assert np.allclose(m["var_probs"], 0, atol=1e-12)
    assert np.allclose(m["mutual_info"], 0, atol=1e-6)
    assert np.all(m["variation_ratio"] == 0)


@pytest.mark.parametrize("arch,shape", [("mnist-cnn", (1, 28, 28)), ("alexnet", (3, 64, 64))])
def test_cached_prefix_equals_the_plain_path_for_the_same_seed(arch, shape):
    net, x = model(0.4, shape, arch), images(6, shape)
    ids = [10, 11, 12, 13, 14, 15]
    cached = mc_probs(net, x, ids, passes=9, seed=5, cache=True)
    plain = mc_probs(net, x, ids, passes=9, seed=5, cache=False)
    assert torch.allclose(cached, plain, atol=1e-6)
    assert cached.var(0).max() > 0  # dropout really was on


def test_an_images_result_does_not_depend_on_its_batch():
    net, x = model(0.3), images(8)
    ids = list(range(100, 108))
    together = mc_probs(net, x, ids, passes=10, seed=1)
    alone = mc_probs(net, x[3:4], ids[3:4], passes=10, seed=1)
    reordered = mc_probs(net, x.flip(0), ids[::-1], passes=10, seed=1)
    assert torch.allclose(together[:, 3:4], alone, atol=1e-6)
    assert torch.allclose(together, reordered.flip(1), atol=1e-6)
    other_seed = mc_probs(net, x, ids, passes=10, seed=2)
    assert not torch.allclose(together, other_seed)


def test_mc_dropout_turns_on_dropout_only_and_restores_modes():
    net = model(0.3)
    net.train()
    with mc_dropout(net):
        assert all(m.training for m in net.modules() if isinstance(m, torch.nn.Dropout))
        assert not any(m.training for m in net.modules() if not isinstance(m, torch.nn.Dropout))
    assert all(m.training for m in net.modules())


def test_nan_logits_are_reported_with_the_image_ids():
    net, x = model(0.3), images(4)
    x[2] = float("nan")
    with pytest.raises(NumericsError, match=r"image ids \[42\]"):
        mc_probs(net, x, [40, 41, 42, 43], passes=3, seed=0)


def test_run_metrics_match_a_direct_computation():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=200)
    y = rng.integers(0, 4, size=200)
    got = run_metrics(p, y, bins=15)
    assert got["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))
    assert got["nll"] == pytest.approx(-np.mean(np.log(p[np.arange(200), y])))
    assert got["brier"] == pytest.approx(np.mean(np.sum((p - np.eye(4)[y]) ** 2, axis=1)))
    top, correct = p.max(1), (p.argmax(1) == y)
    ece = 0.0
    for k in range(15):
        lo, hi = k / 15, (k + 1) / 15
        sel = (top > lo) & (top <= hi) if k else (top >= lo) & (top <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - top[sel].mean())
    assert got["ece"] == pytest.approx(ece)


def test_perfect_confident_predictions_are_calibrated():
    p = np.eye(3)[[0, 1, 2, 0]]
    got = run_metrics(p, np.array([0, 1, 2, 0]), bins=15)
    assert got["accuracy"] == 1 and got["ece"] == pytest.approx(0) and got["brier"] == pytest.approx(0)
    bins = calibration_bins(p.max(1), np.ones(4), 15)
    assert [b["n_images"] for b in bins][-1] == 4 and sum(b["n_images"] for b in bins) == 4


def test_a_hand_worked_mc_example():
    from compute.metrics import image_measures

    probs = np.array([[[1.0, 0.0], [0.0, 1.0]]])  # (N, T, C): one image, T = 2 passes, two classes
    for label in (0, 1):
        m = image_measures(probs, np.array([label]))
        assert m["entropy"][0] == pytest.approx(np.log(2))
        assert m["mutual_info"][0] == pytest.approx(np.log(2))  # each pass is certain: all of it is disagreement
        assert m["variation_ratio"][0] == pytest.approx(0.5)
        assert m["confidence"][0] == pytest.approx(1 - 0.25)  # variance of (1, 0) is 0.25
        assert m["true_prob"][0] == pytest.approx(0.5) and m["fooled_share"][0] == pytest.approx(0.5)


def reference_masks(seed, ids, layer, passes, units, p):
    """compute/masks.py's definition written again in numpy's unsigned 64-bit arithmetic."""
    import hashlib
    m64 = np.uint64
    g, c1, c2 = m64(0x9E3779B97F4A7C15), m64(0xBF58476D1CE4E5B9), m64(0x94D049BB133111EB)

    def mix(z):
        z = (z ^ (z >> m64(30))) * c1
        z = (z ^ (z >> m64(27))) * c2
        return z ^ (z >> m64(31))

    s = m64(int.from_bytes(hashlib.sha256(f"robustviz-mc:{seed}".encode()).digest()[:8], "little"))
    words = (units + 1) // 2
    keep = np.zeros((passes, len(ids), units), dtype=bool)
    with np.errstate(over="ignore"):
        for b, i in enumerate(ids):
            key = mix(mix(s + g * m64(i + 1)) + g * m64(layer + 1))
            z = mix(key + g * np.arange(1, passes * words + 1, dtype=np.uint64))
            lo, hi = z & m64(0xFFFFFFFF), z >> m64(32)
            u = np.stack([lo, hi], axis=1).reshape(passes, 2 * words)[:, :units]
            keep[:, b] = (u ^ m64(1 << 31)) >= m64(math.ceil(p * 2 ** 32))  # the signed reading, shifted by 2^31
    return keep


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_masks_are_the_counter_based_function_of_seed_image_layer_pass_and_unit(device, monkeypatch):
    import compute.masks as masks
    monkeypatch.setattr(masks, "CPU_WORDS", 50)  # several blocks of passes, as on a large batch
    ids, p = [0, 7, 123456, 2 ** 40], 0.3
    for layer, features in ((0, (3, 5, 5)), (1, (9,))):  # an odd unit count splits a word
        got = masks.dropout_masks(torch.tensor(ids, device=device), 6, features, p, "run-1", layer)
        assert got.device.type == device and got.shape == (6, 4, *features)
        want = reference_masks("run-1", ids, layer, 6, math.prod(features), p)
        assert np.array_equal(got.cpu().numpy().reshape(want.shape) > 0, want)
        assert set(np.unique(got.cpu().numpy())) <= {0.0, np.float32(1 / (1 - p))}


def test_masks_drop_at_rate_p_and_are_uncorrelated_across_units_passes_and_images():
    from compute.masks import dropout_masks
    keep = dropout_masks(list(range(200)), 50, (400,), 0.2, 0, 0) > 0  # 4 million units
    rate = 1 - keep.float().mean().item()
    assert abs(rate - 0.2) < 5 * math.sqrt(0.2 * 0.8 / keep.numel())
    k = keep.float() - keep.float().mean()
    for a, b in ((k[..., 1:], k[..., :-1]), (k[1:], k[:-1]), (k[:, 1:], k[:, :-1])):
        corr = (a * b).mean() / k.var()
        assert abs(corr.item()) < 0.01
    other_layer = dropout_masks(list(range(200)), 50, (400,), 0.2, 0, 1) > 0
    assert (keep != other_layer).float().mean().item() == pytest.approx(2 * 0.2 * 0.8, abs=0.01)


def test_the_masks_are_freed_when_the_context_ends_without_waiting_for_the_garbage_collector(monkeypatch):
    import gc
    import weakref

    import compute.methods.mc_dropout as unc
    made = []

    def recording(*args, **kwargs):
        masks = real(*args, **kwargs)
        made.append(weakref.ref(masks))
        return masks

    real = unc.dropout_masks
    monkeypatch.setattr(unc, "dropout_masks", recording)
    net, x = model(0.3), images(4)
    gc.disable()  # a reference cycle would keep them alive until the collector runs
    try:
        mc_probs(net, x, [0, 1, 2, 3], passes=5, seed=0)
        assert len(made) == 2 and all(ref() is None for ref in made)
    finally:
        gc.enable()


@pytest.mark.parametrize("name", sorted(__import__("compute.methods", fromlist=["METHODS"]).METHODS))
def test_every_registered_method_keeps_the_shared_contract(name):
    """A method plans its models and draws (n, T, C) probabilities keyed by image id, whatever the batch
    (an ensemble's T is its members, and its passes need no seed)."""
    from compute.config import from_dict
    from compute.contract import ENSEMBLE_METHODS, model_key
    from compute.methods import METHODS
    from compute.methods.ensemble import Ensemble

    method = METHODS[name]
    planned = method.plan(from_dict({"model": {"dropout": [0.2, 0.3]}, "uncertainty": {"members": 3}}))
    keys = [model_key("mnist-cnn", tag) for tag in planned]
    assert len(set(keys)) == len(keys) >= 1 and all({"label", "dropout_p", "members"} <= set(s) for s in planned.values())
    assert all({"seed_offset", "share", "dropout_p"} <= set(m) for s in planned.values() for m in s["members"])
    ensemble = name in ENSEMBLE_METHODS
    net = Ensemble([model(0.3, seed=k) for k in range(3)]) if ensemble else model(0.3)
    passes = 3 if ensemble else 7
    if ensemble:
        assert all(len(s["members"]) == 3 and s["dropout_p"] is None for s in planned.values())
    torch.manual_seed(0)
    x = torch.rand(6, 1, 28, 28)
    ids = [10, 11, 12, 13, 14, 15]
    probs = method.pass_probs(net, x, ids, 7, 2)
    assert probs.shape == (6, passes, 10) and probs.dtype == torch.float32
    assert torch.allclose(probs.sum(2), torch.ones(6, passes), atol=1e-5)
    alone = method.pass_probs(net, x[2:3], ids[2:3], 7, 2)
    assert torch.allclose(alone[0], probs[2], atol=1e-5)  # an image's passes do not depend on its batch
    again = method.pass_probs(net, x[[4, 1]], ids, 7, 2, positions=[4, 1])
    assert torch.allclose(again, probs[[4, 1]], atol=1e-5)  # positions say which image of the batch each is
    if ensemble:  # its members are its passes: no randomness
        assert torch.allclose(method.pass_probs(net, x, ids, 7, 3), probs)
    else:
        assert not torch.allclose(method.pass_probs(net, x, ids, 7, 3), probs)  # the seed matters
    measures = image_measures(probs.numpy(), np.zeros(6, dtype=int))
    assert np.allclose(measures["mean_probs"], probs.mean(1).numpy(), atol=1e-6)  # (n, T, C): T is axis 1
