"""Do adversarials survive? The transformations (compute/survival.py), SSIM, and the survival table of
a finished run recomputed from its checkpoints and stored adversarials, as a reviewer would."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from compute import parts, survival
from compute.attacks.common import ssim
from compute.contract import SCHEMAS, TILED_POINTS, condition_name
from compute.models import load_checkpoint
from compute.pixels import to_float
from conftest import RESULTS_FIXTURE


def digits(n=4, seed=0):
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 1, 28, 28), dtype=np.uint8)
    images[:, :, 6:22, 10:18] = rng.integers(120, 256, size=(n, 1, 16, 8))
    return images


def test_jpeg_is_pillows_round_trip_at_quality_75():
    images = digits()
    out = survival.jpeg(images)
    buffer = io.BytesIO()
    Image.fromarray(images[1, 0], "L").save(buffer, format="JPEG", quality=75)
    assert np.array_equal(out[1, 0], np.asarray(Image.open(buffer)))
    assert not np.array_equal(out, images) and out.dtype == np.uint8 and out.shape == images.shape
    colour = np.repeat(images, 3, axis=1)
    assert survival.jpeg(colour).shape == colour.shape  # RGB through the same path, channels first


def test_gaussian_noise_has_its_sd_and_depends_on_the_image_id_alone():
    images = np.full((2, 1, 28, 28), 128, dtype=np.uint8)
    noisy = survival.gaussian(images, np.array([5, 9]), seed=0)
    sd = (noisy.astype(float) - 128).std() / 255
    assert sd == pytest.approx(survival.NOISE_SIGMA, rel=0.1)
    # the same image id draws the same noise in any batch (sharding), another id different noise
    alone = survival.gaussian(images[1:], np.array([9]), seed=0)
    assert np.array_equal(alone[0], noisy[1]) and not np.array_equal(noisy[0], noisy[1])
    assert not np.array_equal(survival.gaussian(images[1:], np.array([9]), seed=1)[0], noisy[1])


def test_a_median_filter_removes_an_isolated_pixel_and_keeps_a_flat_image():
    flat = np.full((1, 1, 9, 9), 40, dtype=np.uint8)
    salted = flat.copy()
    salted[0, 0, 4, 4] = 255
    assert np.array_equal(survival.median(salted), flat)
    assert survival.transformed("median3", salted, np.array([0]), 0).tolist() == flat.tolist()
    with pytest.raises(KeyError, match="unknown transformation"):
        survival.transformed("blur", salted, np.array([0]), 0)


def test_ssim_is_scikit_images_and_one_for_an_unchanged_image():
    a = digits(3)
    b = a.copy()
    b[:, :, 10, 12] = 0
    values = ssim(a, b)
    assert values[0] == pytest.approx(structural_similarity(a[0, 0], b[0, 0], data_range=255))
    assert (values < 1).all() and ssim(a, a).tolist() == [1.0, 1.0, 1.0]
    small = np.zeros((1, 1, 5, 5), np.uint8)  # smaller than the 7-pixel window: the largest odd one that fits
    assert ssim(small, small)[0] == 1.0


def test_the_attacks_tables_ssim_recomputes_from_the_tiles():
    """SSIM in attacks.parquet is that of the tiled 8-bit adversarial (the picture the site shows) to its original."""
    att = pd.read_parquet(RESULTS_FIXTURE / "attacks.parquet")
    tiles = pd.read_parquet(RESULTS_FIXTURE / "tiles.parquet")
    images = pd.read_parquet(RESULTS_FIXTURE / "images.parquet").set_index("image_id")
    size = 28

    def crop(sheet, col, row):
        pixels = np.asarray(Image.open(RESULTS_FIXTURE / "tiles" / sheet))
        return pixels[row * size:(row + 1) * size, col * size:(col + 1) * size]
    checked = 0
    for t in tiles[tiles["attack"].isin(["iaa", "fgsm"])].head(12).itertuples():
        o = images.loc[t.image_id]
        row = att[(att["image_id"] == t.image_id) & (att["model"] == t.model) & (att["attack"] == t.attack)
                  & (att["operating_point"] == t.operating_point)].iloc[0]
        expected = structural_similarity(crop(o.sheet, o.sheet_col, o.sheet_row), crop(t.sheet, t.sheet_col, t.sheet_row),
                                         data_range=255)
        assert row["ssim"] == pytest.approx(expected, abs=1e-9)
        checked += 1
    assert checked == 12
    assert att["ssim"].between(-1, 1).all()


def test_the_survival_table_recomputes_from_checkpoints_and_stored_adversarials(tiny_run):
    """For every successful minimal and confident adversarial of one attack: JPEG-75 with Pillow, then the
    checkpoint's prediction, and the other model's on the untouched adversarial; the table says the same."""
    results = tiny_run.results_dir
    table = pd.read_parquet(results / "survival.parquet")
    assert list(table.columns) == SCHEMAS["survival"].names
    att = pd.read_parquet(results / "attacks.parquet")
    plan = parts.Plan.read(results)
    models = {k: load_checkpoint(results / "models" / f"{k}.pt") for k in ("cnn-p0.2", "cnn-p0.3")}
    labels = pd.read_parquet(results / "images.parquet").set_index("image_id")["label"]
    stored = parts.read_part(results / plan.find("attack", "cnn-p0.2", "iaa", 0).path).arrays
    for point in TILED_POINTS:
        name = condition_name("iaa", point)
        ids = stored["image_ids"][stored[f"positions-{name}"]]
        won = att[(att["model"] == "cnn-p0.2") & (att["attack"] == "iaa") & (att["operating_point"] == point)
                  & att["success"]]
        keep = np.isin(ids, won["image_id"])
        ids, pixels = ids[keep], stored[f"images-{name}"][keep]
        assert len(ids) == len(won) > 0
        y = labels.loc[ids].to_numpy()
        with torch.no_grad():
            after = models["cnn-p0.2"](to_float(survival.jpeg(pixels))).argmax(1).numpy()
            moved = models["cnn-p0.3"](to_float(pixels)).argmax(1).numpy()
            right = models["cnn-p0.3"](to_float(originals(results, ids))).argmax(1).numpy() == y
        mine = table[(table["model"] == "cnn-p0.2") & (table["attack"] == "iaa") & (table["operating_point"] == point)]
        jpeg = mine[mine["transform"] == "jpeg75"].set_index("image_id").loc[ids]
        assert np.array_equal(jpeg["fooled"].to_numpy(), after != y)
        assert (jpeg["target"] == "cnn-p0.2").all()
        transfer = mine[mine["transform"] == "transfer"].set_index("image_id")
        assert set(transfer.index) == set(ids[right])  # only images whose original the other model gets right
        assert np.array_equal(transfer.loc[ids[right], "fooled"].to_numpy(), moved[right] != y[right])
        assert (transfer["target"] == "cnn-p0.3").all()
    assert set(table["transform"]) == {*survival.TRANSFORMS, survival.TRANSFER}


def originals(results, image_ids):
    """The original test images of ``image_ids`` (uint8 (N, 1, 28, 28)), cut from their tiles."""
    images = pd.read_parquet(results / "images.parquet").set_index("image_id").loc[image_ids]
    sheets = {name: np.asarray(Image.open(results / "tiles" / name)) for name in set(images["sheet"])}
    return np.stack([sheets[o.sheet][o.sheet_row * 28:(o.sheet_row + 1) * 28, o.sheet_col * 28:(o.sheet_col + 1) * 28][None]
                     for o in images.itertuples()])


def test_transfer_is_judged_only_where_the_other_model_gets_the_original_right():
    """``judge`` with stand-in models: "own" calls every image 1; "other" is right on the originals of
    label 0 only (it calls everything 0), so its transfer rows are those images, none of them fooled."""
    labels = np.array([0, 0, 2, 2, 0])
    originals = digits(5)
    adversarials = originals.copy()
    at = np.array([0, 2, 3, 4])  # the successful adversarials' positions
    calls = []

    def predict(key, pixels, where):
        calls.append((key, len(pixels)))
        return np.full(len(pixels), 1 if key == "own" else 0)
    rows = pd.DataFrame(survival.judge("own", ["own", "other"], adversarials[at], at, np.array([10, 12, 13, 14]),
                                       originals, labels, predict, seed=0))
    own = rows[rows["target"] == "own"]
    assert sorted(set(own["transform"])) == sorted(survival.TRANSFORMS) and len(own) == 3 * 4
    assert own["fooled"].all()  # "own" says 1, never the label
    transfer = rows[rows["transform"] == survival.TRANSFER]
    assert transfer["image_id"].tolist() == [10, 14] and (transfer["target"] == "other").all()
    assert not transfer["fooled"].any()  # "other" says 0, the label of both
