"""Shared fixtures: a tiny end-to-end run on the embedded MNIST sample, built once per session."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compute import config, pipeline
from site_builder.build import build_site

torch.set_num_threads(2)

TINY = {
    "name": "tiny",
    "data": {"train_limit": 600, "test_limit": 120},
    "model": {"dropout": [0.2, 0.3]},
    "train": {"epochs": 2},
    "uncertainty": {"passes": 10, "batch_size": 32},
}


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
