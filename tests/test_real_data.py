"""Real data end to end through the CLI: a slice of Debian's Fashion-MNIST, and the 20 CIFAR-10 test
photographs in the foolbox wheel's data folder as an image folder on the colour path (AlexNet).

Both read files installed on the machine: ``make data`` installs Debian's dataset-fashion-mnist and the
test extras install foolbox (whose package is never imported: only its data folder is read). Where
one is missing the test skips with the command that installs it; on CI (``ROBUSTVIZ_REQUIRE_DATA``,
set by .ci/run) it fails instead.
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from compute import cli, datasets
from compute.models import load_checkpoint
from compute.pixels import to_float
from conftest import to_toml
from test_browser import Visit, browser  # noqa: F401  (the fixture)

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def require(path: Path | None, install: str) -> Path:
    """``path`` when it exists; else skip saying how to install it (fail on CI, where it must be there)."""
    if path is not None and path.exists():
        return path
    message = f"needs {path or 'a package'}: {install}"
    if os.environ.get("ROBUSTVIZ_REQUIRE_DATA"):
        pytest.fail(message)
    pytest.skip(message)


def run_cli(toml: Path, out: Path) -> Path:
    """train, compute and build through the command line; returns the results directory."""
    for command in (["train"], ["compute"]):
        assert cli.main([*command, "--config", str(toml), "--out", str(out), "--quiet"]) == 0
    name = re.search(r'^name = "(.*)"', toml.read_text(), re.M).group(1)
    results = out / "results" / name
    assert cli.main(["build", str(results), "--out", str(out / "site")]) == 0
    return results


def test_fashion_mnist_slice_of_the_real_files_through_the_cli(tmp_path):
    root = require(Path(datasets.FASHION_MNIST_ROOT) / "t10k-images-idx3-ubyte.gz",
                   "sudo apt-get install dataset-fashion-mnist").parent
    toml = tmp_path / "fashion.toml"
    toml.write_text(to_toml({
        "name": "fashion-slice", "data": {"name": "fashion-mnist", "train_limit": 2000, "test_limit": 96},
        "model": {"dropout": [0.25]}, "train": {"epochs": 2},
        "uncertainty": {"passes": 10, "batch_size": 32, "methods": ["mc_dropout"]},
        "attacks": {"enabled": ["fgsm", "pgd"]}, "embedding": {"reference_images": 100}, "ood": {"images": 32}}))
    results = run_cli(toml, tmp_path)
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "fashion-mnist"
    assert manifest["dataset"]["class_names"][:2] == ["T-shirt/top", "Trouser"]
    assert (manifest["dataset"]["n_train_images"], manifest["dataset"]["n_test_images"]) == (2000, 96)
    # The slice is the real test set's first 96 images, read here independently of robustviz.
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as fh:
        expected = np.frombuffer(fh.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:96]
    images = pd.read_parquet(results / "images.parquet")
    assert images["image_id"].tolist() == list(range(96))
    sheet = np.asarray(Image.open(results / "tiles" / images["sheet"].iloc[0]))
    cols = manifest["tiles"]["sheet_cols"]
    assert np.array_equal(sheet[:28, :28], expected[0]) and np.array_equal(sheet[:28, 28 * 5:28 * 6], expected[5])
    assert cols >= 6
    assert manifest["models"][0]["accuracy"] > 0.5  # 10 classes: chance is 0.1
    detection = pd.read_parquet(results / "detection.parquet")
    assert (detection["reference"] == "ood").any()
    assert (tmp_path / "site" / "runs" / "fashion-slice" / "detection.html").is_file()


def foolbox_data() -> Path | None:
    """The foolbox wheel's data folder, found without importing foolbox."""
    spec = importlib.util.find_spec("foolbox")
    return Path(spec.submodule_search_locations[0]) / "data" if spec and spec.submodule_search_locations else None


@pytest.mark.browser
def test_cifar10_photographs_on_the_colour_path_fool_and_draw(tmp_path, browser):  # noqa: F811
    data = require(foolbox_data(), "pip install foolbox (the test extras: pip install -e .[test])")
    files = sorted(data.glob("cifar10_*.png"))
    assert len(files) == 20, files
    folder = tmp_path / "cifar10"
    for f in files:  # cifar10_<index>_<label>.png
        label = CIFAR10[int(f.stem.rsplit("_", 1)[1])]
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f.name).write_bytes(f.read_bytes())
    toml = tmp_path / "cifar.toml"
    toml.write_text(to_toml({
        "name": "cifar10-photos", "data": {"name": "imagefolder", "root": str(folder), "test_size": 8,
                                           "image_size": 96},
        "model": {"dropout": [0.2]}, "train": {"epochs": 15, "batch_size": 4},
        "uncertainty": {"passes": 10, "batch_size": 8, "methods": ["mc_dropout"]},
        # Every attack, with the costliest cut short: the test checks what is shown, not the attacks' strength.
        "attacks": {"eot_pgd": {"steps": 4, "masks": 3}, "lbfgs": {"iterations": 5}, "iaa": {"max_iterations": 100}},
        "embedding": {"reference_images": 10},
        "ood": {"images": 16}}))
    results = run_cli(toml, tmp_path)
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["dataset"]["image_shape"] == [3, 96, 96] and manifest["models"][0]["architecture"] == "alexnet"
    assert manifest["tiles"]["format"] == "webp"
    key = manifest["models"][0]["key"]
    model = load_checkpoint(results / "models" / f"{key}.pt").eval()
    attacks = pd.read_parquet(results / "attacks.parquet")
    assert set(attacks["attack"]) == set(manifest["attacks"]["enabled"])
    shown = pd.read_parquet(results / "tiles.parquet")
    shown = shown[shown["picture"] == "adversarial"].merge(
        attacks[["image_id", "model", "attack", "operating_point", "success", "adv_pred"]],
        on=["image_id", "model", "attack", "operating_point"]).merge(
        pd.read_parquet(results / "images.parquet")[["image_id", "label"]], on="image_id")
    fooled = shown[shown["success"]]
    assert len(fooled) > 0, "no attack fooled the model: nothing shown to check"
    size = 96
    for r in fooled.itertuples():
        sheet = np.asarray(Image.open(results / "tiles" / r.sheet).convert("RGB"))
        tile = sheet[r.sheet_row * size:(r.sheet_row + 1) * size, r.sheet_col * size:(r.sheet_col + 1) * size]
        with torch.no_grad():
            pred = int(model(to_float(torch.from_numpy(tile.transpose(2, 0, 1).copy())[None])).argmax())
        assert pred != r.label and pred == r.adv_pred, (r.attack, r.operating_point, r.image_id)
    site = tmp_path / "site"
    for page in sorted((site / "runs" / "cifar10-photos").glob("*.html")):
        visit = Visit(browser, page.as_uri())
        assert all(s == "true" for s in visit.rendered()), page.name
        assert not visit.errors, (page.name, visit.errors)
        assert not [u for u in visit.requests if not u.startswith(("file://", "data:", "blob:"))], page.name
        visit.page.close()
