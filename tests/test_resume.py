"""Resume after a crash, incremental recompute, and sharded runs: the same tables as one clean run."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from compute import config, pipeline
from compute.assemble import IncompleteError, assemble
from compute.models import load_checkpoint, save_checkpoint
from compute.parts import Plan
from conftest import ROOT, assert_same_tables, copy_models, part_dirs, to_toml
from site_builder.build import build_site


def plan_of(cfg: config.RunConfig) -> Plan:
    plan = Plan.read(cfg.results_dir)
    assert plan is not None
    return plan


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
    done, total = len(part_dirs(cfg.results_dir)), len(plan_of(cfg).parts)
    assert 4 <= done < total and not (cfg.results_dir / "manifest.json").exists()
    summary = pipeline.compute(cfg, progress=False)
    assert summary.reused == done and summary.computed == total - done
    assert f"reused {done} part(s), computed {total - done}" in summary.line()
    assert_same_tables(cfg.results_dir, tiny_run.results_dir)
    assert not [p for p in (cfg.results_dir / "parts").glob("*/*/.*")]  # no half-written part left


def test_retraining_one_model_recomputes_only_its_parts(tiny_run, tmp_path):
    cfg = copy_models(tiny_run, tmp_path)
    shutil.copytree(tiny_run.results_dir / "parts", cfg.results_dir / "parts")
    first = pipeline.compute(cfg, progress=False)
    plan = plan_of(cfg).parts
    assert (first.reused, first.computed) == (len(plan), 0)
    model = load_checkpoint(pipeline.checkpoint_path(cfg, "cnn-p0.3"))
    with torch.no_grad():
        model.layers.fc.bias += 0.01  # stands in for retraining this model
    save_checkpoint(model, pipeline.checkpoint_path(cfg, "cnn-p0.3"))
    second = pipeline.compute(cfg, progress=False)
    # its clean, attack, activation, feature and survival parts (the reference images' features among them),
    # its OOD images' part, and the other model's survival parts, whose transfer it judges
    of_model = [p for p in plan if p.model == "cnn-p0.3" or p.unit == "survival"]
    assert len(of_model) == 2 + 4 * len(cfg.attacks.enabled) + 2 + 1 + len(cfg.attacks.enabled)
    assert (second.reused, second.computed) == (len(plan) - len(of_model), len(of_model))
    changed = config.from_dict({**cfg.to_dict(), "attacks": {**cfg.to_dict()["attacks"],
                                                              "iaa": {**cfg.to_dict()["attacks"]["iaa"], "d_max": 50.0}}})
    third = pipeline.compute(changed, progress=False)
    of_iaa = [p for p in plan if p.condition == "iaa"]  # the attack, its activation maps, features, survival, both models
    assert len(of_iaa) == 2 * 4
    assert (third.reused, third.computed) == (len(plan) - len(of_iaa), len(of_iaa))
    iaa = pd.read_parquet(changed.results_dir / "attacks.parquet").query("attack == 'iaa'")
    # IAA never takes a step past D_max, so every adversarial, success or failure, lies within the new
    # budget; the old budget (300) is what the first compute used, so its largest D would be over 50.
    before = pd.read_parquet(tiny_run.results_dir / "attacks.parquet").query("attack == 'iaa'")
    assert before["perceptual_distance"].max() > 50
    assert iaa["perceptual_distance"].max() <= 50 * (1 + 1e-9)


def test_three_shards_give_the_same_tables_and_site_as_one_run(tiny_run, tmp_path):
    values = tiny_run.to_dict()
    values["uncertainty"]["batch_size"], values["attacks"]["batch_size"] = 20, 40  # 3 blocks of 40 images
    whole = copy_models(tiny_run, tmp_path / "whole", values)
    pipeline.compute(whole, progress=False)
    build_site([whole.results_dir], tmp_path / "whole-site")
    cfg = copy_models(tiny_run, tmp_path / "sharded", values)
    for k in (2, 0):  # out of order, like independent jobs
        summary = pipeline.compute(cfg, progress=False, shard=(k, 3))
        per_shard = len([p for p in plan_of(cfg).parts if p.shard == k])
        assert summary.n_images == 40 and summary.computed == per_shard and f"shard {k + 1}/3" in summary.line()
        assert "not assembled yet" in summary.line()
        assert not (cfg.results_dir / "manifest.json").exists()
    with pytest.raises(IncompleteError, match=r"shard\(s\) 2/3"):
        assemble(cfg.results_dir)
    last = pipeline.compute(cfg, progress=False, shard=(1, 3))
    assert last.n_images == 40 and (cfg.results_dir / "manifest.json").exists()
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


def test_same_config_and_seed_give_identical_tables_and_site(tiny_run, tmp_path):
    """Train, compute and build again from scratch: everything but wall-time figures is identical."""
    again = config.from_dict({**tiny_run.to_dict(), "out": str(tmp_path)})
    pipeline.train_all(again, progress=False)
    for key in ("cnn-p0.2", "cnn-p0.3"):
        ours = torch.load(pipeline.checkpoint_path(again, key), weights_only=True)["state_dict"]
        theirs = torch.load(pipeline.checkpoint_path(tiny_run, key), weights_only=True)["state_dict"]
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    pipeline.compute(again, progress=False)
    assert_same_tables(again.results_dir, tiny_run.results_dir)
    build_site([again.results_dir], again.site_dir)
    files = [p for p in sorted(tiny_run.site_dir.rglob("*")) if p.is_file()]
    assert len(files) == len([p for p in again.site_dir.rglob("*") if p.is_file()])
    for path in files:
        if path.name != "provenance.html":  # provenance shows timings and the date of assembly
            assert path.read_bytes() == (again.site_dir / path.relative_to(tiny_run.site_dir)).read_bytes(), path
