"""Regenerate tests/fixtures/results/tiny: a small finished run that the site tests build from
without training (tables, tiles and manifest; no checkpoints or parts, which the builder never reads).

    .venv/bin/python tests/make_fixture.py

Run it whenever the results schema changes (tests/test_fixture.py says when). It trains two tiny
MC-dropout models and two ensembles of 3 on the embedded MNIST sample and computes every table for 40 test images (about 40 s).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from compute import config, datasets, pipeline  # noqa: E402

FIXTURE = HERE / "fixtures" / "results" / "tiny"
CONFIG = {
    "name": "tiny",
    "out": "build",  # relative, so the recorded config does not depend on where this ran
    "data": {"test_size": 40},  # 4 test images per class (stratified); the other 4,960 train
    "model": {"dropout": [0.2, 0.3]},
    "train": {"epochs": 2},
    # Both ensembles beside MC dropout, of 3 members, attacked on 20 images.
    "uncertainty": {"passes": 10, "batch_size": 20, "members": 3, "ensemble_images": 20},
    # EOT-PGD on its subset (20 images, evenly spaced), so the site tests meet an attack that skips images.
    "attacks": {"batch_size": 20, "eot_pgd": {"max_images": 20, "steps": 4, "masks": 3}},
}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        cfg = config.from_dict(CONFIG)
        # Activation maps of two images only: maps of every class's extremes would make the fixture ~1.5 MB.
        ids = datasets.load(cfg.data)[1].image_ids[:2].tolist()
        cfg = config.from_dict({**CONFIG, "activations": {"per_class": 0, "image_ids": ids}})
        pipeline.train_all(cfg, progress=False)
        pipeline.compute(cfg, progress=False)
        shutil.rmtree(FIXTURE, ignore_errors=True)
        shutil.copytree(cfg.results_dir, FIXTURE, ignore=shutil.ignore_patterns("models", "parts"))
    size = sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file())
    print(f"wrote {FIXTURE} ({size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
