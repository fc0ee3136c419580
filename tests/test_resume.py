"""Resume after a crash, incremental recompute, and sharded runs: the same tables as one clean run."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from compute import config, pipeline
from compute.assemble import IncompleteError, assemble
from compute.models import load_checkpoint, save_checkpoint
from compute.tables import SCHEMAS
from site_builder.build import build_site

ROOT = Path(__file__).resolve().parent.parent
TIMING = {"seconds"}  # columns that measure wall time, the only ones allowed to differ


def copy_models(tiny_run, out: Path, values: dict | None = None) -> config.RunConfig:
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


def test_compute_killed_mid_run_resumes_and_matches_an_uninterrupted_run(tiny_run, tmp_path):
    cfg = copy_models(tiny_run, tmp_path)
    toml = tmp_path / "run.toml"
    toml.write_text(to_toml(cfg.to_dict()))
    proc = subprocess.Popen([sys.executable, "-m", "compute.cli", "compute", "--config", str(toml), "--quiet"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(part_dirs(cfg.results_dir)) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "compute finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(part_dirs(cfg.results_dir))
    assert 4 <= done < 17 and not (cfg.results_dir / "manifest.json").exists()
    summary = pipeline.compute(cfg, progress=False)
    assert summary.reused == done and summary.computed == 17 - done
    assert f"reused {done} part(s), computed {17 - done}" in summary.line()
    assert_same_tables(cfg.results_dir, tiny_run.results_dir)
    assert not [p for p in (cfg.results_dir / "parts").glob("*/*/.*")]  # no half-written part left


def test_retraining_one_model_recomputes_only_its_parts(tiny_run, tmp_path):
    cfg = copy_models(tiny_run, tmp_path)
    shutil.copytree(tiny_run.results_dir / "parts", cfg.results_dir / "parts")
    first = pipeline.compute(cfg, progress=False)
    assert (first.reused, first.computed) == (17, 0)
    model = load_checkpoint(pipeline.checkpoint_path(cfg, 0.3))
    with torch.no_grad():
        model.layers.fc.bias += 0.01  # stands in for retraining this model
    save_checkpoint(model, pipeline.checkpoint_path(cfg, 0.3))
    second = pipeline.compute(cfg, progress=False)
    assert (second.reused, second.computed) == (9, 8)  # data + p=0.2's 8 parts kept; p=0.3's 8 redone
    changed = config.from_dict({**cfg.to_dict(), "attacks": {**cfg.to_dict()["attacks"],
                                                              "iaa": {**cfg.to_dict()["attacks"]["iaa"], "d_max": 50.0}}})
    third = pipeline.compute(changed, progress=False)
    assert (third.reused, third.computed) == (13, 4)  # iaa and its activation maps, for both models
    iaa = pd.read_parquet(changed.results_dir / "attacks.parquet").query("attack == 'iaa'")
    assert iaa["perceptual_distance"].max() < 50 + 10 * 0.1 * 1e3  # the new budget was used


def test_three_shards_give_the_same_tables_and_site_as_one_run(tiny_run, tmp_path):
    values = tiny_run.to_dict()
    values["uncertainty"]["batch_size"], values["attacks"]["batch_size"] = 20, 40  # 3 blocks of 40 images
    whole = copy_models(tiny_run, tmp_path / "whole", values)
    pipeline.compute(whole, progress=False)
    build_site([whole.results_dir], tmp_path / "whole-site")
    cfg = copy_models(tiny_run, tmp_path / "sharded", values)
    for k in (2, 0):  # out of order, like independent jobs
        summary = pipeline.compute(cfg, progress=False, shard=(k, 3))
        assert summary.images == 40 and summary.computed == 17 and f"shard {k + 1}/3" in summary.line()
        assert "not assembled yet" in summary.line()
        assert not (cfg.results_dir / "manifest.json").exists()
    with pytest.raises(IncompleteError, match=r"shard\(s\) 2/3"):
        assemble(cfg.results_dir)
    last = pipeline.compute(cfg, progress=False, shard=(1, 3))
    assert last.images == 40 and (cfg.results_dir / "manifest.json").exists()
    assert_same_tables(cfg.results_dir, whole.results_dir)
    build_site([cfg.results_dir], tmp_path / "site")
    compared = 0
    for path in sorted((tmp_path / "site").rglob("*")):
        rel = path.relative_to(tmp_path / "site")
        if path.is_file() and path.name != "provenance.html":  # provenance shows timings and paths
            assert path.read_bytes() == (tmp_path / "whole-site" / rel).read_bytes(), rel
            compared += 1
    assert compared > 20
    # Shards run on several machines may never assemble: `robustviz build` does it.
    from compute import cli

    (cfg.results_dir / "manifest.json").unlink()
    assert cli.main(["build", str(cfg.results_dir), "--out", str(tmp_path / "site2")]) == 0
    assert_same_tables(cfg.results_dir, whole.results_dir)
    assert (tmp_path / "site2" / "runs" / "tiny" / "explorer.html").is_file()


def test_shards_must_be_whole_batches():
    from compute.parts import ShardError, parse_shard, shard_positions

    assert [len(shard_positions(1000, k, 3, 256)) for k in range(3)] == [512, 256, 232]
    assert parse_shard("2/3") == (1, 3) and parse_shard(None) == (0, 1)
    with pytest.raises(ShardError, match="at most 4 shards"):
        shard_positions(1000, 0, 5, 256)
    for bad in ("3", "0/3", "4/3", "a/b"):
        with pytest.raises(ShardError, match="K/N|between 1 and N"):
            parse_shard(bad)


def to_toml(values: dict, prefix: str = "") -> str:
    """A minimal TOML writer for config dicts (strings, numbers, booleans, lists, nested tables)."""
    import json

    scalars, tables = [], []
    for key, value in values.items():
        if isinstance(value, dict):
            tables.append(to_toml(value, f"{prefix}{key}."))
        else:
            scalars.append(f"{key} = {json.dumps(value)}")
    head = f"[{prefix.rstrip('.')}]\n" if prefix else ""
    return head + "\n".join(scalars) + "\n" + "".join(tables)


def test_same_config_and_seed_give_identical_tables_and_site(tiny_run, tmp_path):
    """Train, compute and build again from scratch: everything but wall-time figures is identical."""
    again = config.from_dict({**tiny_run.to_dict(), "out": str(tmp_path)})
    pipeline.train_all(again, progress=False)
    for p in (0.2, 0.3):
        ours = torch.load(pipeline.checkpoint_path(again, p), weights_only=True)["state_dict"]
        theirs = torch.load(pipeline.checkpoint_path(tiny_run, p), weights_only=True)["state_dict"]
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    pipeline.compute(again, progress=False)
    assert_same_tables(again.results_dir, tiny_run.results_dir)
    build_site([again.results_dir], again.site_dir)
    files = [p for p in sorted(tiny_run.site_dir.rglob("*")) if p.is_file()]
    assert len(files) == len([p for p in again.site_dir.rglob("*") if p.is_file()])
    for path in files:
        if path.name != "provenance.html":  # provenance shows timings and the output path
            assert path.read_bytes() == (again.site_dir / path.relative_to(tiny_run.site_dir)).read_bytes(), path
