"""Shared fixtures and helpers: a tiny end-to-end run on the embedded MNIST sample (trained once per
session), the committed results fixture for the site tests, and writers of tiny dataset files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from compute import config, pipeline
from compute.contract import SCHEMAS
from site_builder.build import build_site

torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results" / "tiny"  # see tests/make_fixture.py
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
TIMING = {"seconds", "train_seconds", "seconds_per_image"}  # columns that measure wall time, the only ones allowed to differ between runs

TINY = {
    "name": "tiny",
    "data": {"test_size": 1000, "train_limit": 600, "test_limit": 120},
    "model": {"dropout": [0.2, 0.3]},
    "train": {"epochs": 2},
    # MC dropout alone: the tests of the machinery (resume, shards, workers...) run it; ENSEMBLES adds the ensembles.
    "uncertainty": {"passes": 10, "batch_size": 32, "methods": ["mc_dropout"]},
    # The adaptive attacker on its documented subset, small: the tests check what it does, not its strength.
    "attacks": {"eot_pgd": {"max_images": 40, "steps": 4, "masks": 3}},
    "embedding": {"reference_images": 100},  # of the 600 training images, so they are a sample
    "ood": {"images": 64},  # rendered letters, two MC batches
}


# The tiny run with both ensembles, of 3 members (MC dropout at T = 3 beside), attacked on 40 images.
ENSEMBLES = {"passes": 10, "batch_size": 32, "members": 3, "ensemble_images": 40,
             "methods": ["mc_dropout", "deep_ensemble", "subset_ensemble"]}


def tiny_config(out: Path, **changes) -> config.RunConfig:
    values = {**TINY, "out": str(out), **changes}
    return config.from_dict(values)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> config.RunConfig:
    """Train, compute and build the tiny run once; returns its config (results_dir, site_dir)."""
    out = tmp_path_factory.mktemp("tiny")
    cfg = tiny_config(out)
    pipeline.train_all(cfg, progress=False)
    pipeline.compute(cfg, progress=False)
    build_site([cfg.results_dir], cfg.site_dir)
    return cfg


@pytest.fixture(scope="session")
def ensemble_run(tmp_path_factory) -> config.RunConfig:
    """The tiny run with both ensembles beside MC dropout (``ENSEMBLES``), trained, computed and built once."""
    out = tmp_path_factory.mktemp("ensembles")
    cfg = tiny_config(out, uncertainty=ENSEMBLES)
    pipeline.train_all(cfg, progress=False)
    pipeline.compute(cfg, progress=False)
    build_site([cfg.results_dir], cfg.site_dir)
    return cfg


@pytest.fixture(scope="session")
def fixture_site(tmp_path_factory) -> Path:
    """The site built from the committed results fixture (no training needed)."""
    site = tmp_path_factory.mktemp("fixture") / "site"
    build_site([RESULTS_FIXTURE], site)
    return site


def copy_models(tiny_run: config.RunConfig, out: Path, values: dict | None = None) -> config.RunConfig:
    """A fresh results directory holding only the tiny run's checkpoints, with its config (or ``values``)."""
    cfg = config.from_dict({**(values or tiny_run.to_dict()), "out": str(out)})
    shutil.copytree(tiny_run.results_dir / "models", cfg.results_dir / "models")
    return cfg


def assert_same_tables(a: Path, b: Path) -> None:
    for name in SCHEMAS:
        left, right = pd.read_parquet(a / f"{name}.parquet"), pd.read_parquet(b / f"{name}.parquet")
        keep = [c for c in left.columns if c not in TIMING]
        pd.testing.assert_frame_equal(left[keep], right[keep], check_exact=True, obj=name)
    sheets = sorted(p.name for p in (a / "tiles").iterdir())
    assert sheets == sorted(p.name for p in (b / "tiles").iterdir())
    for sheet in sheets:
        assert (a / "tiles" / sheet).read_bytes() == (b / "tiles" / sheet).read_bytes(), sheet


def part_dirs(results: Path) -> list[Path]:
    return [p for p in (results / "parts").glob("*/*/shard-*") if p.is_dir()]


def to_toml(values: dict, prefix: str = "") -> str:
    """A minimal TOML writer for config dicts (strings, numbers, booleans, lists, nested tables)."""
    scalars, tables = [], []
    for key, value in values.items():
        if isinstance(value, dict):
            tables.append(to_toml(value, f"{prefix}{key}."))
        else:
            scalars.append(f"{key} = {json.dumps(value)}")
    head = f"[{prefix.rstrip('.')}]\n" if prefix else ""
    return head + "\n".join(scalars) + "\n" + "".join(tables)


def write_stl10(root, n_train=6, n_test=4, corrupt=None):
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)  # row-major (C, H, W)
        y = rng.integers(0, 3, size=n).astype(np.uint8)
        x.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")  # on disk: column-major
        (y + 1).tofile(folder / f"{split}_y.bin")  # on disk: 1-based
        arrays[split] = (x, y)
    (folder / "class_names.txt").write_text("airplane\nbird\ncar\n")
    if corrupt:
        with open(folder / corrupt, "r+b") as fh:
            fh.truncate(1000)
    return arrays


def write_folder(root, classes, n=5, size=(20, 20), mode="L"):
    rng = np.random.default_rng(1)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            shape = size[::-1] if mode == "L" else (*size[::-1], 3)
            Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")


def write_mnist(root, n=(12, 5), corrupt=False):
    """MNIST's idx files (big-endian headers, uint8 payload) for tiny train and test sets."""
    import struct

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for prefix, count in (("train", n[0]), ("t10k", n[1])):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        data = struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes()
        if corrupt and prefix == "t10k":
            data = data[: len(data) // 2]
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(data)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, count) + labels.tobytes())
    return images, labels
