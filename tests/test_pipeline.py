"""The batch stage end to end on a tiny run, and the command line's behaviour."""
from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pandas as pd
import pytest

from compute import cli, datasets, embedding, parts, pipeline
from compute.contract import SCHEMAS, file_sha256
from compute.parts import Plan
from compute.models import load_checkpoint
from conftest import ROOT, copy_models, tiny_config
from site_builder.build import build_site

KEYS = ("cnn-p0.2", "cnn-p0.3")  # the tiny run's models: the seed's CNN at dropout 0.2 and 0.3


def test_tables_follow_the_contract(tiny_run):
    out = tiny_run.results_dir
    for name, schema in SCHEMAS.items():
        table = pd.read_parquet(out / f"{name}.parquet")
        assert list(table.columns) == schema.names, name
    unc = pd.read_parquet(out / "uncertainty.parquet")
    images = pd.read_parquet(out / "images.parquet")
    assert len(images) == 120 and images["image_id"].is_unique
    # Every adversarial set covers the attacked images (EOT-PGD: its evenly spaced subset of 40); noise
    # controls cover the successes of the set they copy.
    attacks = pd.read_parquet(out / "attacks.parquet")
    sets = {"fgsm": 120, "fgsm-confident": 120, **{f"fgsm-eps{e:g}": 120 for e in (0.05, 0.1, 0.2, 0.3)},
            "lbfgs": 120, "lbfgs-confident": 120, "iaa": 120, "iaa-confident": 120, "eot_pgd": 40,
            "eot_pgd-confident": 40, **{f"eot_pgd-eps{e:g}": 40 for e in (0.1, 0.2, 0.3)},
            "pgd": 40, "pgd-confident": 40, **{f"pgd-eps{e:g}": 40 for e in (0.1, 0.2, 0.3)}}
    sizes = unc[~unc["noise"]].groupby(["model", "condition"]).size()
    assert sizes.to_dict() == {(p, c): n for p in KEYS for c, n in {"clean": 120, **sets}.items()}
    for (p, condition), rows in unc[unc["noise"]].groupby(["model", "condition"]):
        first = rows.iloc[0]
        matched = attacks[(attacks["model"] == p) & (attacks["attack"] == first["attack"])
                          & (attacks["operating_point"] == first["operating_point"])
                          & (attacks["eps"].fillna(-1) == (-1 if first["eps"] != first["eps"] else first["eps"]))]
        assert sorted(rows["image_id"]) == sorted(matched.loc[matched["success"], "image_id"]), condition
    assert len(attacks) == 2 * (120 * (4 + 2) + 120 * 2 + 120 * 2 + 2 * 40 * (3 + 2))
    minimal = attacks[attacks["operating_point"] == "minimal"]
    assert minimal.groupby(["attack", "model"]).size().to_dict() == {
        (a, p): 40 if a in ("eot_pgd", "pgd") else 120 for a in ("fgsm", "lbfgs", "iaa", "eot_pgd", "pgd") for p in KEYS}
    assert attacks.loc[attacks["attack"] == "fgsm", "eps"].dropna().unique().tolist() == [0.05, 0.1, 0.2, 0.3]
    budget = attacks["operating_point"] == "budget"
    assert (attacks.loc[budget, "linf"] <= attacks.loc[budget, "eps"] + 1e-6).all()
    hit = attacks[attacks["success"]]
    assert hit[["noise_l2", "noise_linf", "noise_pred"]].notna().all().all()
    assert attacks.loc[~attacks["success"], ["noise_l2", "noise_linf", "noise_pred"]].isna().all().all()
    linf = hit["attack"].isin(["fgsm", "eot_pgd", "pgd"])  # random signs of the same L-infinity
    assert np.allclose(hit.loc[linf, "noise_linf"], hit.loc[linf, "linf"], atol=1e-6)
    assert np.allclose(hit.loc[~linf, "noise_l2"], hit.loc[~linf, "l2"], rtol=0.02)  # the same L2
    sparse = hit[hit["attack"] == "iaa"]  # its own changes, moved: the same L0, L2 and L-infinity
    assert (sparse["noise_l0"] <= sparse["l0"]).all() and (sparse["noise_l0"] == sparse["l0"]).mean() > 0.9
    assert np.allclose(sparse["noise_linf"], sparse["linf"], atol=1e-6)
    tiles = pd.read_parquet(out / "tiles.parquet")
    assert set(tiles["picture"]) == {"adversarial"}  # the site draws perturbations from the two pictures
    assert set(tiles["operating_point"]) == {"minimal", "confident"}
    pictured = tiles[tiles["picture"] == "adversarial"].groupby(["attack", "operating_point", "model"]).size()
    assert set(pictured.to_dict().values()) == {120, 40}
    emb = pd.read_parquet(out / "embedding.parquet")
    placed = emb.groupby(["model", "method", "condition"]).size().to_dict()
    assert placed == {(p, m, c + point): 40 if c in ("eot_pgd", "pgd") else 120 for p in KEYS for m in ("pca", "tsne")
                      for c in ("clean", "fgsm", "lbfgs", "iaa", "eot_pgd", "pgd")
                      for point in ([""] if c == "clean" else ["", "-confident"])}
    assert np.isfinite(emb[["x", "y"]].to_numpy()).all()
    # The maps are fitted on training images, evenly spaced, none of them a test image (an adversarial's
    # own original among the fitted points would hold it in place).
    plan = Plan.read(out)
    train, _ = datasets.load(tiny_run.data)
    for key in KEYS:
        fitted = np.concatenate([parts.read_part(out / p.path).arrays["image_ids-reference"]
                                 for p in plan.shard_parts("features", key, "reference")])
        assert fitted.tolist() == train.image_ids[embedding.reference_positions(600, 100)].tolist()
        assert not set(fitted) & set(images["image_id"])
    near = pd.read_parquet(out / "neighbours.parquet")
    assert near.groupby(["model", "image_id"])["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    assert (near["image_id"] != near["neighbour_id"]).all() and near.groupby(["model", "image_id"])["distance"].is_monotonic_increasing.all()
    acts = pd.read_parquet(out / "activations.parquet")
    assert set(acts["layer"]) == {"conv1", "conv2"}
    assert {"clean", "fgsm", "lbfgs", "iaa"} <= set(acts["condition"]) <= {"clean", "fgsm", "lbfgs", "iaa", "eot_pgd", "pgd"}
    detection = pd.read_parquet(out / "detection.parquet")
    assert set(detection["score"]) == {"entropy", "mutual_info", "variation_ratio", "max_prob"}
    for p in KEYS:  # negatives: the clean-correct images of the model (those of its subset, for EOT-PGD and PGD)
        correct = minimal[(minimal["model"] == p) & (minimal["attack"] == "fgsm")]["clean_correct"].sum()
        whole = detection[(detection["model"] == p) & ~detection["attack"].isin(["eot_pgd", "pgd"])]
        assert (whole["n_clean"] == correct).all()
    done = detection[detection["n_adv"] > 0]
    assert ((done["auroc_low"] <= done["auroc"] + 1e-12) & (done["auroc"] <= done["auroc_high"] + 1e-12)).all()
    assert set(detection["reference"]) == {"adversarial", "noise", "unattacked", "ood"}
    assert set(detection["attack"]) == {"fgsm", "lbfgs", "iaa", "eot_pgd", "pgd", "ood"}  # ood: the OOD images
    subset = detection[detection["attack"].isin(["eot_pgd", "pgd"])]
    assert (subset["n_clean"] <= 40).all()  # an attack on a subset: the clean-correct images of its subset
    assert (acts.loc[acts["layer"] == "conv1", "maps"] == 16).all()
    assert set(unc["model"]) == set(KEYS) and set(unc["dropout_p"]) == {0.2, 0.3}
    for name in SCHEMAS:  # every table with rows per model names it by key, its dropout rate beside it
        table = pd.read_parquet(out / f"{name}.parquet")
        if "model" in table and name not in ("transfer", "equal_passes"):  # the ensembles' tables: empty here
            pairs = set(zip(table["model"], table["dropout_p"]))
            assert pairs <= {("cnn-p0.2", 0.2), ("cnn-p0.3", 0.3)} and len(pairs) == 2, name
    assert all(len(v) == 10 for v in unc["pass_true_prob"])
    assert np.allclose(np.stack(unc["mean_probs"]).sum(1), 1, atol=1e-5)
    assert (unc["mutual_info"] <= unc["entropy"] + 1e-9).all()
    assert (out / "tiles" / images["sheet"].iloc[0]).is_file()


def test_accuracy_under_attack_never_exceeds_clean_accuracy(tiny_run):
    attacks = pd.read_parquet(tiny_run.results_dir / "attacks.parquet")
    unc = pd.read_parquet(tiny_run.results_dir / "uncertainty.parquet")
    images = pd.read_parquet(tiny_run.results_dir / "images.parquet").set_index("image_id")
    manifest = json.loads((tiny_run.results_dir / "manifest.json").read_text())
    for p in KEYS:
        clean_accuracy = next(m["accuracy"] for m in manifest["models"] if m["key"] == p)
        for (attack, point, eps), rows in attacks[attacks["model"] == p].groupby(
                ["attack", "operating_point", "eps"], dropna=False):
            right = rows["image_id"].map(images["label"]) == rows["adv_pred"]
            assert not (rows["success"] & right).any()  # success means the model is now wrong
            assert not (rows["success"] & ~rows["clean_correct"]).any()  # never for an image wrong before
            if len(rows) == len(images):  # attacks on every image (not on a subset)
                assert right.mean() <= clean_accuracy + 1e-9, (attack, point, eps)
                assert rows["clean_correct"].mean() == pytest.approx(clean_accuracy)
        clean = unc[(unc["model"] == p) & (unc["condition"] == "clean")].set_index("image_id")
        for attack in ("fgsm", "lbfgs", "iaa"):
            adv = unc[(unc["model"] == p) & (unc["condition"] == attack)].set_index("image_id")
            assert adv["fooled_share"].mean() > clean["fooled_share"].mean()


def test_per_class_metrics_match_a_direct_computation(tiny_run):
    out = tiny_run.results_dir
    unc = pd.read_parquet(out / "uncertainty.parquet")
    metrics = pd.read_parquet(out / "metrics.parquet")
    for p in KEYS:
        rows = unc[(unc["model"] == p) & (unc["condition"] == "clean")]
        metrics_p = metrics[(metrics["model"] == p) & (metrics["condition"] == "clean")]
        overall = metrics_p[metrics_p["class_name"].isna()].iloc[0]
        assert overall["accuracy"] == pytest.approx((rows["pred"] == rows["label"]).mean())
        assert overall["n_images"] == len(rows)
        for label in range(10):
            sel = rows[rows["label"] == label]
            got = metrics_p[metrics_p["class_name"] == str(label)].iloc[0]
            assert got["n_images"] == len(sel)
            if len(sel) == 0:  # a class absent from the test images has no figures, not zeros
                assert np.isnan(got["accuracy"]) and np.isnan(got["nll"])
                continue
            assert got["accuracy"] == pytest.approx((sel["pred"] == label).mean())
            assert got["nll"] == pytest.approx(-np.log(np.clip(sel["true_prob"], 1e-12, None)).mean(), rel=1e-6)


def test_manifest_records_config_hashes_versions_and_timings(tiny_run):
    out = tiny_run.results_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"] == tiny_run.to_dict()
    assert manifest["dataset"]["n_test_images"] == 120 and manifest["dataset"]["class_names"][0] == "0"
    for m in manifest["models"]:
        assert m["checkpoint_sha256"] == file_sha256(out / m["checkpoint"])
        assert 0 <= m["accuracy"] <= 1
        assert load_checkpoint(out / m["checkpoint"]).meta["dropout"] == m["dropout_p"]
        if m["method"] == "mc_dropout":
            assert m["checkpoint"] == f"models/{m['key']}.pt" and m["label"] == f"MC dropout p = {m['dropout_p']:g}"
        else:  # its first member's; test_ensembles.py checks every member
            assert m["checkpoint"] == f"models/{m['key']}-m0.pt" and m["dropout_p"] is None
    assert [m["key"] for m in manifest["models"]] == list(KEYS)
    cards = manifest["attacks"]["cards"]  # what the site knows of each attack comes from the registry
    assert set(cards) == set(manifest["attacks"]["enabled"]) == {"fgsm", "lbfgs", "iaa", "eot_pgd", "pgd"}
    assert cards["eot_pgd"]["baseline"] == "pgd" and cards["iaa"]["noise"] == "sparse"
    resolved = manifest["attacks"]["resolved"]  # the baseline runs on the adaptive attacker's budgets and images
    assert {k: resolved["pgd"][k] for k in ("eps", "steps", "max_images")} == \
        {k: resolved["eot_pgd"][k] for k in ("eps", "steps", "max_images")}
    assert manifest["attacks"]["ranking"] == "fgsm"
    assert [a for a, c in cards.items() if c["adaptive"]] == ["eot_pgd"]
    assert {c["norm"] for c in cards.values()} == {"linf", "l2"} and cards["fgsm"]["limit_caption"] == "ε ≤ 0.5"
    for name, digest in manifest["tables"].items():
        assert digest == file_sha256(out / f"{name}.parquet")
    assert {"torch", "numpy", "python"} <= set(manifest["versions"])
    assert manifest["timings"]["total"] > 0


def test_compute_without_checkpoints_says_to_train_first(tmp_path):
    cfg = tiny_config(tmp_path)
    with pytest.raises(Exception, match="run `robustviz train`"):
        pipeline.compute(cfg, progress=False)
    assert not (cfg.results_dir / "manifest.json").exists()


def test_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "c.toml"
    bad.write_text("[uncertainty]\npasses = 0\n")
    assert cli.main(["compute", "--config", str(bad), "--out", str(tmp_path)]) == 2
    assert "passes must be >= 1" in capsys.readouterr().err
    assert cli.main(["build", str(tmp_path / "missing"), "--out", str(tmp_path / "site")]) == 2
    assert "run `robustviz compute` first" in capsys.readouterr().err


def test_cli_demo_trains_computes_and_builds(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('name = "cli"\n[data]\ntrain_limit = 200\ntest_limit = 40\n[model]\ndropout = [0.25]\n'
                   '[train]\nepochs = 1\n[uncertainty]\npasses = 4\nmethods = ["mc_dropout"]\n')
    assert cli.main(["demo", "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("train: 200 images") and lines[1].startswith("compute: 40 images")
    assert lines[2].startswith("build: 1 run(s)") and lines[2].endswith("index.html")
    assert (tmp_path / "o" / "site" / "index.html").is_file()
    made = json.loads((tmp_path / "o" / "results" / "cli" / "manifest.json").read_text())["provenance"]
    assert made["command"] == ["robustviz", "demo", "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", made["created"])
    # run from this checkout: the commit it is at (CI and users run from a clone)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert made["code"]["commit"] == head.stdout.strip() and isinstance(made["code"]["dirty"], bool)
    # build takes its folders from the same config
    cfg.write_text(cfg.read_text().replace('name = "cli"', f'name = "cli"\nout = "{tmp_path / "o"}"'))
    (tmp_path / "o" / "site" / "index.html").unlink()
    assert cli.main(["build", "--config", str(cfg)]) == 0
    assert (tmp_path / "o" / "site" / "index.html").is_file()


def test_sprite_sheets_are_lossless_in_grey_and_colour(tmp_path):
    from PIL import Image

    from compute import tiles

    rng = np.random.default_rng(0)
    for channels, size in ((1, 28), (3, 96)):
        pictures = rng.integers(0, 256, size=(5, channels, size, size), dtype=np.uint8)
        where = tiles.write_sheets(pictures, tmp_path, f"c{channels}")
        sheet = np.asarray(Image.open(tmp_path / where["sheet"][0]))
        sheet = sheet[:, :, None] if sheet.ndim == 2 else sheet
        for i, (col, row) in enumerate(zip(where["sheet_col"], where["sheet_row"])):
            tile = sheet[row * size:(row + 1) * size, col * size:(col + 1) * size].transpose(2, 0, 1)
            assert np.array_equal(tile, pictures[i]), (channels, i)  # the exact 8-bit image comes back


def test_a_run_without_attacks_computes_and_builds(tiny_run, tmp_path):
    values = tiny_run.to_dict()
    cfg = copy_models(tiny_run, tmp_path, {**values, "attacks": {**values["attacks"], "enabled": []}})
    pipeline.compute(cfg, progress=False)
    assert pd.read_parquet(cfg.results_dir / "attack_summary.parquet").empty
    assert set(pd.read_parquet(cfg.results_dir / "embedding.parquet")["condition"]) == {"clean"}
    report = build_site([cfg.results_dir], cfg.site_dir)
    run_pages = {p.name for p in (cfg.site_dir / "runs" / "tiny").glob("*.html")}
    # claim (a) needs no attack: its findings are on the clean images
    assert run_pages == {"findings.html", "uncertainty.html", "provenance.html", "explorer.html", "image.html"}
    assert report.pages == 6  # the overview and the five above
