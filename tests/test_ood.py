"""Out-of-distribution images: the rendered letters, the OOD table and detection rows a reviewer can
recompute from the tables and checkpoints, and what the site shows of them."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from compute import config, ood
from compute.config import ConfigError, OODConfig, DataConfig
from compute.contract import OOD
from compute.detection import flag_score
from compute.metrics import auroc
from compute.models import load_checkpoint
from compute.pixels import to_float


def test_letters_are_centred_like_digits_and_reproducible():
    a = ood.render_letters(30, (1, 28, 28), seed=0)
    assert a.shape == (30, 1, 28, 28) and a.dtype == np.uint8
    assert np.array_equal(a, ood.render_letters(30, (1, 28, 28), seed=0))
    assert not np.array_equal(a, ood.render_letters(30, (1, 28, 28), seed=1))
    for image in a[:, 0].astype(float):
        rows, cols = np.flatnonzero(image.sum(1)), np.flatnonzero(image.sum(0))
        # MNIST's preparation: the glyph fits a 20 x 20 box, its centre of mass at the centre.
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 20
        centre = np.array([np.arange(28) @ image.sum(1), np.arange(28) @ image.sum(0)]) / image.sum()
        assert np.all(np.abs(centre - 13.5) <= 2.5), centre
        assert image.max() == 255 and (image > 0).mean() < 0.5  # white strokes on black
    colour = ood.render_letters(3, (3, 40, 40), seed=0)
    assert colour.shape == (3, 3, 40, 40) and np.array_equal(colour[:, 0], colour[:, 2])


def test_a_dataset_as_ood_set_is_converted_to_the_run_shape():
    digits = ood.load(OODConfig(dataset="mnist-sample", images=50), DataConfig(name="fashion-mnist"), (3, 32, 32))
    assert digits.images.shape == (50, 3, 32, 32) and digits.split == "ood"
    assert (digits.labels == -1).all() and digits.image_ids.tolist() == list(range(50))
    grey = ood.conform(digits.images.numpy(), (1, 28, 28))
    assert grey.shape == (50, 1, 28, 28)
    assert ood.load(OODConfig(dataset=""), DataConfig(), (1, 28, 28)) is None


@pytest.mark.parametrize("values,message", [
    ({"ood": {"dataset": "mnist-sample"}}, "is the run's own dataset"),
    ({"data": {"name": "mnist"}, "ood": {"dataset": "mnist-sample"}}, "is the run's own dataset"),
    ({"ood": {"dataset": "cifar"}}, "ood.dataset must be \"letters\""),
    ({"ood": {"images": -1}}, "ood.images must be >= 0"),
])
def test_bad_ood_config_is_named(values, message):
    with pytest.raises(ConfigError, match=message):
        config.from_dict(values)


def test_ood_rows_recompute_from_the_tables_and_checkpoints(tiny_run):
    results = tiny_run.results_dir
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["ood"]["dataset"] == "letters" and manifest["ood"]["n_images"] == 64
    table = pd.read_parquet(results / "ood.parquet")
    unc = pd.read_parquet(results / "uncertainty.parquet")
    detection = pd.read_parquet(results / "detection.parquet")
    rows = detection[detection["reference"] == OOD]
    keys = [m["key"] for m in manifest["models"]]
    assert sorted(rows["model"].unique()) == sorted(keys) and (rows["attack"] == OOD).all()
    letters = torch.from_numpy(ood.render_letters(64, (1, 28, 28), tiny_run.seed))
    for key in keys:
        mine = table[table["model"] == key].sort_values("image_id")
        assert mine["image_id"].tolist() == list(range(64))
        # The baseline column is what the checkpoint says of the rendered letters, dropout off.
        model = load_checkpoint(results / "models" / f"{key}.pt").eval()
        with torch.no_grad():
            probs = torch.softmax(model(to_float(letters)), dim=1).numpy()
        np.testing.assert_allclose(mine["max_prob"], probs.max(1), rtol=1e-4, atol=1e-5)
        assert (mine["plain_pred"].to_numpy() == probs.argmax(1)).mean() > 0.95  # near-ties may flip
        assert mine["entropy"].between(0, np.log(10) + 1e-9).all()
        clean = unc[(unc["model"] == key) & (unc["condition"] == "clean")]
        negatives = clean[clean["plain_pred"] == clean["label"]]
        got = rows[rows["model"] == key].set_index("score")
        for score in ("entropy", "max_prob", "mutual_info"):
            expected = auroc(flag_score(negatives, score), flag_score(mine, score))
            assert got.loc[score, "auroc"] == pytest.approx(expected, abs=1e-12)
            assert (got.loc[score, "n_clean"], got.loc[score, "n_adv"]) == (len(negatives), 64)
            assert got.loc[score, "auroc_low"] <= got.loc[score, "auroc"] <= got.loc[score, "auroc_high"]
        delta = got.loc["entropy", "auroc"] - got.loc["max_prob", "auroc"]
        assert got.loc["entropy", "delta_vs_baseline"] == pytest.approx(delta, abs=1e-12)
        assert got.loc["entropy", "delta_low"] <= delta <= got.loc["entropy", "delta_high"]
    findings = pd.read_parquet(results / "findings.parquet")
    claim = findings[findings["claim"] == "mc_flags_ood"]
    assert len(claim) == 3 * len(keys) and (claim["n"] == 64).all()
    for r in claim.itertuples():
        row = rows[(rows["model"] == r.model) & (rows["score"] == r.measure)].iloc[0]
        assert (r.value, r.low, r.high) == (row["delta_vs_baseline"], row["delta_low"], row["delta_high"])


def test_the_site_shows_the_ood_images_beside_the_attacks(tiny_run):
    run = tiny_run.site_dir / "runs" / tiny_run.name
    detection = (run / "detection.html").read_text()
    assert 'id="ood"' in detection and "all N = 64 rendered letters" in detection
    assert detection.count("OOD image ") == 24  # the strip: 24 of the 64, each with its alt text
    assert "OOD: rendered letters" in detection  # a row of every model's AUROC figure and the overview
    findings = (run / "findings.html").read_text()
    assert "Images of no known class" in findings and "Not measured: the run names no out-of-distribution" not in findings
    assert (run / "tiles" / "ood-000.png").is_file()
