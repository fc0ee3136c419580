"""Ensembles beside MC dropout (issue 21): the batched members, their training, attacks on them, the
comparison at equal cost, and what the manifest and the site say of them."""
from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from compute import config, datasets, pipeline
from compute.attacks.eot_pgd import _objective
from conftest import assert_same_tables, copy_models
from compute.config import ConfigError
from compute.contract import CLEAN, CONFIDENT, file_sha256
from compute.equal_cost import methods_table, verdict
from compute.methods import METHODS
from compute.methods.ensemble import Ensemble, loop_logits, share_positions
from compute.metrics import image_measures, run_metrics
from compute.models import build_model, load_checkpoint

CLASSES = tuple("0123456789")


def _members(count: int, seed: int = 0, same: bool = False) -> list:
    torch.manual_seed(seed)
    out = []
    for k in range(count):
        m = build_model("mnist-cnn", (1, 28, 28), CLASSES, 0.2, (0.1 + 0.01 * k,), (0.3,))
        for p in m.parameters():
            torch.nn.init.normal_(p, std=0.1)
        out.append(m.eval())
    if same:
        out = [copy.deepcopy(out[0]) for _ in range(count)]
    return out


def test_batched_members_equal_a_loop_over_members_in_either_memory_layout():
    members = _members(4)
    x = torch.rand(16, 1, 28, 28)
    ensemble = Ensemble(members)
    assert torch.allclose(ensemble.member_logits(x), loop_logits(members, x), atol=1e-5)
    last = [copy.deepcopy(m).to(memory_format=torch.channels_last) for m in members]
    wide = Ensemble(last).to(memory_format=torch.channels_last)
    assert torch.allclose(wide.member_logits(x.contiguous(memory_format=torch.channels_last)),
                          loop_logits(members, x), atol=1e-5)
    # forward is the log of the mean softmax: what every attack is run against and judged by
    mean = torch.softmax(loop_logits(members, x), dim=2).mean(0)
    assert torch.allclose(torch.softmax(ensemble(x), dim=1), mean, atol=1e-6)
    assert not any(isinstance(m, torch.nn.Dropout) for m in ensemble.modules())  # never taken for MC dropout


def test_an_ensemble_of_identical_members_is_one_model_with_no_disagreement():
    members = _members(5, same=True)
    x = torch.rand(12, 1, 28, 28)
    ensemble = Ensemble(members)
    single = torch.softmax(members[0](x), dim=1)
    assert torch.allclose(torch.softmax(ensemble(x), dim=1), single, atol=1e-6)
    probs = METHODS["deep_ensemble"].pass_probs(ensemble, x, list(range(12)), 50, 0).numpy()
    assert probs.shape == (12, 5, 10)
    measures = image_measures(probs, np.zeros(12, dtype=np.int64))
    assert np.allclose(measures["mutual_info"], 0.0, atol=1e-6)
    assert np.allclose(measures["variation_ratio"], 0.0)
    assert np.allclose(measures["mean_probs"], single.detach().numpy(), atol=1e-6)
    # and different members do disagree
    other = image_measures(METHODS["deep_ensemble"].pass_probs(Ensemble(_members(5)), x, list(range(12)), 50, 0).numpy(),
                           np.zeros(12, dtype=np.int64))
    assert (other["mutual_info"] > 1e-4).all()


def test_the_adaptive_attackers_gradient_is_the_gradient_of_the_exact_mean_over_members():
    members = _members(3, seed=1)
    ensemble = Ensemble(members)
    x = torch.rand(6, 1, 28, 28)
    labels = torch.arange(6) % 10
    for objective in ("targeted", "untargeted"):
        xa = x.clone().requires_grad_(True)
        (got,) = torch.autograd.grad(_objective(ensemble, xa, labels, 1, 1.0, objective).sum(), xa)
        xb = x.clone().requires_grad_(True)
        log_mean = torch.log(torch.softmax(loop_logits(members, xb), dim=2).mean(0))
        if objective == "targeted":
            wrong = log_mean.detach().masked_fill(torch.nn.functional.one_hot(labels, 10).bool(), float("-inf")).argmax(1)
            gain = log_mean.gather(1, wrong[:, None]).squeeze(1)
        else:
            gain = -log_mean.gather(1, labels[:, None]).squeeze(1)
        fooled = (log_mean.argmax(1) != labels).float().detach()
        gain = gain + fooled * (log_mean.exp() * log_mean).sum(1)
        (want,) = torch.autograd.grad(gain.sum(), xb)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4), objective
        assert got.abs().sum() > 0


def test_a_share_of_the_training_set_is_seeded_and_of_its_size():
    a, b = share_positions(1000, 0.5, 200), share_positions(1000, 0.5, 201)
    assert len(a) == len(b) == 500 and len(np.unique(a)) == 500 and (np.diff(a) > 0).all()
    assert np.array_equal(a, share_positions(1000, 0.5, 200)) and not np.array_equal(a, b)
    assert np.array_equal(share_positions(7, 1.0, 3), np.arange(7))


@pytest.mark.parametrize("values, key", [
    ({"uncertainty": {"methods": ["mc_dropout", "bagging"]}}, "uncertainty.methods"),
    ({"uncertainty": {"methods": []}}, "uncertainty.methods"),
    ({"uncertainty": {"methods": ["deep_ensemble", "deep_ensemble"]}}, "uncertainty.methods"),
    ({"uncertainty": {"members": 1}}, "uncertainty.members"),
    ({"uncertainty": {"subset_share": 0.0}}, "uncertainty.subset_share"),
    ({"uncertainty": {"subset_share": 1.5}}, "uncertainty.subset_share"),
    ({"uncertainty": {"ensemble_images": -1}}, "uncertainty.ensemble_images"),
    ({"model": {"method": "mc_dropout"}}, "model.method"),
])
def test_bad_method_settings_are_refused_by_name(values, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.from_dict(values)


def test_manifest_lists_each_ensemble_with_its_member_checkpoints(ensemble_run):
    out = ensemble_run.results_dir
    manifest = json.loads((out / "manifest.json").read_text())
    by_method = {m["method"]: m for m in manifest["models"]}
    assert set(by_method) == {"mc_dropout", "deep_ensemble", "subset_ensemble"}
    train, _ = datasets.load(ensemble_run.data)
    for method in ("deep_ensemble", "subset_ensemble"):
        m = by_method[method]
        assert m["dropout_p"] is None and len(m["members"]) == ensemble_run.uncertainty.members
        share = 1.0 if method == "deep_ensemble" else ensemble_run.uncertainty.subset_share
        weights = []
        for k, member in enumerate(m["members"]):
            path = out / member["checkpoint"]
            assert member["checkpoint"] == f"models/{m['key']}-m{k}.pt"
            assert member["checkpoint_sha256"] == file_sha256(path)
            meta = load_checkpoint(path).meta
            assert meta["share"] == member["share"] == share
            # each member saw exactly the share it was given: its seeded positions of the training set
            seen = train.image_ids.numpy()[share_positions(len(train), share, meta["seed"])]
            assert meta["n_train_images"] == len(seen) == round(share * len(train))
            assert meta["train_ids_sha256"] == pipeline.ids_sha256(seen)
            weights.append(load_checkpoint(path).layers.fc.weight)
        assert len({member["seed"] for member in m["members"]}) == len(m["members"])
        assert all(not torch.allclose(weights[0], w) for w in weights[1:])  # members differ
        assert m["train_images"] == sum(x["epochs"] * x["n_train_images"] for x in m["members"])
    subsets = [load_checkpoint(out / x["checkpoint"]).meta["train_ids_sha256"]
               for x in by_method["subset_ensemble"]["members"]]
    assert len(set(subsets)) == len(subsets)


def test_every_method_has_detection_rows_and_the_ensembles_transfer_rows(ensemble_run):
    out = ensemble_run.results_dir
    detection = pd.read_parquet(out / "detection.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    keys = [m["key"] for m in manifest["models"]]
    assert set(detection.loc[detection["reference"] == "adversarial", "model"]) == set(keys)
    ensembles = {m["key"] for m in manifest["models"] if m["method"] != "mc_dropout"}
    moved = detection[detection["reference"] == "transfer"]
    assert set(moved["model"]) == ensembles
    transfer = pd.read_parquet(out / "transfer.parquet")
    attacks = pd.read_parquet(out / "attacks.parquet")
    for (key, attack, point), rows in moved[moved["score"] == "entropy"].groupby(["model", "attack", "operating_point"]):
        t = transfer[(transfer["model"] == key) & (transfer["attack"] == attack) & (transfer["operating_point"] == point)]
        negatives = attacks[(attacks["model"] == key) & (attacks["attack"] == attack) &
                            (attacks["operating_point"] == point) & attacks["clean_correct"]]["image_id"]
        assert rows["n_clean"].iloc[0] == len(negatives)
        assert rows["n_adv"].iloc[0] == int((t["member_success"] & t["fooled"] & t["image_id"].isin(negatives)).sum())
    # attacks on an ensemble run on its evenly spaced subset
    n = attacks.loc[attacks["model"].isin(ensembles) & (attacks["operating_point"] == CONFIDENT)].groupby(
        ["model", "attack"])["image_id"].nunique()
    assert (n <= ensemble_run.uncertainty.ensemble_images).all()


def test_the_methods_table_recomputes_from_the_tables(ensemble_run):
    out = ensemble_run.results_dir
    methods = pd.read_parquet(out / "methods.parquet")
    unc = pd.read_parquet(out / "uncertainty.parquet")
    equal = pd.read_parquet(out / "equal_passes.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    u = ensemble_run.uncertainty
    mc = [m["key"] for m in manifest["models"] if m["method"] == "mc_dropout"]
    # MC dropout at T and at T = M, and each ensemble at its M members
    assert sorted(methods.loc[methods["model"].isin(mc), "passes"].unique()) == [u.members, u.passes]
    assert (methods.loc[~methods["model"].isin(mc), "passes"] == u.members).all()
    assert (methods["reference"] == mc[0]).all()
    for r in methods.itertuples():
        frame = unc if r.passes == u.passes or r.model not in mc else equal
        clean = frame[(frame["model"] == r.model) & (frame["condition"] == CLEAN)]
        got = run_metrics(np.stack(clean["mean_probs"].to_numpy()).astype(np.float64), clean["label"].to_numpy(), u.bins)
        assert r.accuracy == pytest.approx(got["accuracy"]) and r.nll == pytest.approx(got["nll"], rel=1e-5)
        assert r.ece == pytest.approx(got["ece"], rel=1e-5, abs=1e-9)
        assert r.accuracy_low <= r.accuracy <= r.accuracy_high and r.nll_low <= r.nll <= r.nll_high
        assert r.seconds_per_image > 0 and r.train_images > 0
    # the T = M measures are those of the first M of the T passes
    first = equal[(equal["model"] == mc[0]) & (equal["condition"] == CLEAN)].set_index("image_id")
    full = unc[(unc["model"] == mc[0]) & (unc["condition"] == CLEAN)].set_index("image_id")
    passes = np.stack(full["pass_true_prob"].to_numpy())[:, :u.members]
    assert np.allclose(np.stack(first["pass_true_prob"].to_numpy()), passes)
    reference = methods[methods["model"] == mc[0]].iloc[0]
    assert reference["nll_vs_reference"] == 0.0
    other = methods.iloc[-1]
    assert other["nll_vs_reference"] == pytest.approx(other["nll"] - reference["nll"])


def test_the_verdict_follows_the_paired_intervals_and_the_costs():
    base = {"reference": "mc", "passes": 50, "n_images": 100, "train_images": 100, "seconds_per_image": 2.0,
            **{f"{n}_vs_reference{s}": 0.0 for n in ("accuracy", "nll", "ece") for s in ("", "_low", "_high")}}
    mc = {**base, "model": "mc", "method": "mc_dropout", "label": "MC"}
    similar = {**base, "model": "e", "method": "deep_ensemble", "label": "E", "train_images": 500,
               "seconds_per_image": 4.0, "nll_vs_reference_low": -0.1, "nll_vs_reference_high": 0.1}
    assert verdict(pd.DataFrame([mc, similar]))["verdict"] == "holds"
    better = {**similar, "nll_vs_reference_low": -0.2, "nll_vs_reference_high": -0.1}  # the ensemble's NLL lower
    assert verdict(pd.DataFrame([mc, better]))["verdict"] == "partly"
    assert verdict(pd.DataFrame([mc, {**better, "seconds_per_image": 1.0}]))["verdict"] == "does not hold"
    faster = {**similar, "seconds_per_image": 1.0}  # similar, but the ensemble runs faster
    assert verdict(pd.DataFrame([mc, faster]))["verdict"] == "partly"


def test_the_findings_page_states_the_verdict_from_the_methods_table(ensemble_run):
    page = (ensemble_run.site_dir / "runs" / ensemble_run.name / "findings.html").read_text()
    section = page[page.index('id="equal-cost"'):]
    findings = pd.read_parquet(ensemble_run.results_dir / "findings.parquet")
    overall = findings[(findings["claim"] == "mc_efficient") & (findings["measure"] == "overall")]
    assert len(overall) == 2
    words = {"holds": "Yes", "does not hold": "No", "partly": "Partly"}
    verdicts = set(overall["verdict"])
    word = words[verdicts.pop() if len(verdicts) == 1 else "partly"]
    assert f"<strong>{word}, one ensemble at a time:</strong>" in section
    labels = json.loads((ensemble_run.results_dir / "manifest.json").read_text())["models"]
    label_of = {m["key"]: m["label"] for m in labels}
    for r in overall.itertuples():  # each ensemble's own answer, from its row
        assert f"<strong>Against the {label_of[r.model]}: {words[r.verdict]}.</strong>" in section
    assert "spec-equal-cost" in section and "Not measured" not in section.split("</section>")[0]
    methods = pd.read_parquet(ensemble_run.results_dir / "methods.parquet")
    for label in methods["label"]:
        assert label in section


def test_an_ensemble_run_recomputed_from_its_checkpoints_gives_the_same_tables(ensemble_run, tmp_path):
    """Part keys, member loading, subsets and transfer are all deterministic: the same checkpoints, config
    and seed give the same tables (timings aside)."""
    cfg = copy_models(ensemble_run, tmp_path)
    pipeline.compute(cfg, progress=False)
    assert_same_tables(ensemble_run.results_dir, cfg.results_dir)
