"""The seed's claims checked (compute/findings.py): the verdict rule, the measures on relations whose
answer is known, and the findings table of a finished run recomputed independently."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from compute import findings as F
from compute.contract import SCHEMAS
from conftest import RESULTS_FIXTURE
from site_builder.load import load_run


@pytest.mark.parametrize("low, high, supports, expected", [
    (0.1, 0.3, 1, F.HOLDS), (-0.3, -0.1, 1, F.FAILS), (-0.1, 0.2, 1, F.UNCLEAR),
    (0.1, 0.3, -1, F.FAILS), (-0.3, -0.1, -1, F.HOLDS), (float("nan"), 0.2, 1, F.UNCLEAR),
])
def test_a_verdict_is_read_off_its_interval_against_the_side_the_claim_predicts(low, high, supports, expected):
    assert F.verdict(low, high, supports) == expected


def test_one_sign_throughout_needs_both_halves_clear_of_zero():
    assert F.sign_verdict((-0.9, -0.7), (0.8, 0.9)) == F.FAILS  # the bound's shape: the sign flips
    assert F.sign_verdict((0.2, 0.5), (0.8, 0.9)) == F.HOLDS
    assert F.sign_verdict((-0.2, 0.5), (0.8, 0.9)) == F.UNCLEAR


def by_measure(rows: list[dict]) -> dict[str, dict]:
    return {r["measure"]: r for r in rows}


def test_a_line_is_found_linear_and_the_bound_shape_is_not():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 400)
    line = by_measure(F.confidence_accuracy(p, 0.5 + 0.4 * p + rng.normal(0, 0.02, 400), resamples=300))
    assert line["pearson"]["verdict"] == F.HOLDS and line["pearson"]["value"] > 0.95
    assert line["r2_gap"]["value"] < 0 and line["r2_gap"]["verdict"] == F.HOLDS  # a line explains more
    assert line["pearson_below"]["verdict"] == line["pearson_above"]["verdict"] == F.HOLDS
    # confidence = 1 - the bound p(1 - p): what the seed's figure looks like
    shaped = by_measure(F.confidence_accuracy(p, 1 - p * (1 - p) + rng.normal(0, 0.005, 400), resamples=300))
    assert shaped["r2_bound"]["value"] > 0.95 > shaped["r2_linear"]["value"]
    assert shaped["r2_gap"]["low"] > 0 and shaped["r2_gap"]["verdict"] == F.FAILS
    assert shaped["pearson_below"]["high"] < 0 < shaped["pearson_above"]["low"]
    assert shaped["pearson_below"]["verdict"] == F.FAILS
    assert shaped["pearson_below"]["n"] + shaped["pearson_above"]["n"] == 400
    # the interval is a bootstrap over images: it holds the estimate, and is seeded
    for r in shaped.values():
        if r["measure"] != "r2_linear" and not r["measure"].endswith(("_intercept", "_slope")):  # the fits: no interval
            assert r["low"] <= r["value"] <= r["high"], r
    again = by_measure(F.confidence_accuracy(p, 1 - p * (1 - p) + rng.normal(0, 0.005, 400), resamples=300))
    assert again.keys() == shaped.keys()


def test_too_few_images_on_one_side_of_a_half_give_no_verdict_on_the_sign():
    p = np.r_[np.full(5, 0.2), np.linspace(0.6, 1.0, 100)]
    rows = by_measure(F.confidence_accuracy(p, 1 - p * (1 - p), resamples=100))
    assert rows["pearson_below"]["n"] == 5 and np.isnan(rows["pearson_below"]["value"])
    assert rows["pearson_below"]["verdict"] == rows["pearson_above"]["verdict"] == F.UNCLEAR


def test_the_findings_table_of_a_run_recomputes_from_its_uncertainty_table():
    """What a reviewer does: recompute each value from uncertainty.parquet with numpy's own formulas."""
    run = load_run(RESULTS_FIXTURE)
    table = pd.read_parquet(RESULTS_FIXTURE / "findings.parquet")
    assert list(table.columns) == SCHEMAS["findings"].names
    unc = run.uncertainty
    clean = unc[unc["condition"] == "clean"]
    mc = [k for k in run.model_keys if run.model(k)["method"] == "mc_dropout"]  # claim (a) is about MC dropout
    for key in mc:
        mine = table[(table["model"] == key) & table["attack"].isna()].set_index("measure")
        assert set(mine.index) == {"pearson", "spearman", "r2_linear", "r2_bound", "r2_gap", "pearson_below",
                                   "pearson_above", "line_intercept", "line_slope", "bound_intercept", "bound_slope"}
        rows = clean[clean["model"] == key]
        p, c = rows["true_prob"].to_numpy(), rows["confidence"].to_numpy()
        assert mine.loc["pearson", "n"] == len(rows) == len(run.images)
        assert mine.loc["pearson", "value"] == pytest.approx(np.corrcoef(p, c)[0, 1], abs=1e-9)
        assert mine.loc["spearman", "value"] == pytest.approx(
            np.corrcoef(pd.Series(p).rank(), pd.Series(c).rank())[0, 1], abs=1e-9)
        fit = np.polyval(np.polyfit(p, c, 1), p)
        assert mine.loc["r2_linear", "value"] == pytest.approx(1 - ((c - fit) ** 2).sum() / ((c - c.mean()) ** 2).sum(),
                                                               abs=1e-9)
        assert (mine.loc["line_slope", "value"], mine.loc["line_intercept", "value"]) == pytest.approx(
            tuple(np.polyfit(p, c, 1)), abs=1e-9)
        u = p * (1 - p)
        assert (mine.loc["bound_slope", "value"], mine.loc["bound_intercept", "value"]) == pytest.approx(
            tuple(np.polyfit(u, c, 1)), abs=1e-9)
        fit = np.polyval(np.polyfit(u, c, 1), u)
        assert mine.loc["r2_bound", "value"] == pytest.approx(1 - ((c - fit) ** 2).sum() / ((c - c.mean()) ** 2).sum(),
                                                              abs=1e-9)
        gap = mine.loc["r2_gap"]
        assert gap["value"] == pytest.approx(mine.loc["r2_bound", "value"] - mine.loc["r2_linear", "value"])
        assert gap["verdict"] == F.verdict(gap["low"], gap["high"], supports=-1)
        assert mine.loc["pearson_below", "n"] == (p < 0.5).sum()
        # Under an attack: the clean-correct images it attacked, as attacked.
        fgsm = table[(table["model"] == key) & (table["attack"] == "fgsm") & (table["operating_point"] == "minimal")]
        right = set(rows.loc[rows["plain_pred"] == rows["label"], "image_id"])
        attacked = unc[(unc["model"] == key) & (unc["condition"] == "fgsm") & unc["image_id"].isin(right)]
        r = fgsm.set_index("measure").loc["pearson"]
        assert r["n"] == len(attacked) and r["value"] == pytest.approx(
            np.corrcoef(attacked["true_prob"], attacked["confidence"])[0, 1], abs=1e-9)
    assert set(table["verdict"]) <= {F.HOLDS, F.FAILS, F.UNCLEAR, F.PARTLY, ""}
    assert set(table.loc[table["verdict"] == F.PARTLY, "measure"]) <= {"overall"}  # claim (e)'s answer only
    assert not table[~table["operating_point"].isna()]["operating_point"].isin(["budget"]).any()


def test_the_findings_page_says_each_models_verdict_with_its_numbers_and_draws_both_fits():
    """The page shows what the table holds, and its figure's fits are the least-squares lines."""
    import json

    from site_builder import pages
    from site_builder.build import render_files

    run = load_run(RESULTS_FIXTURE)
    page = pages.findings_page(run)
    ctx = page.context
    table = run.findings[run.findings["attack"].isna()]
    mc = [k for k in run.model_keys if run.model(k)["method"] == "mc_dropout"]  # claim (a) is about MC dropout
    assert [r["label"] for r in ctx["rows"]] == [pages.labels(run)[k] for k in mc]
    for r, key in zip(ctx["rows"], mc):
        mine = table[table["model"] == key].set_index("measure")
        assert r["r2_gap"]["verdict"] == mine.loc["r2_gap", "verdict"] and r["n"] == mine.loc["pearson", "n"]
        assert r["pearson"]["low"] == mine.loc["pearson", "low"]
    a = run.findings[run.findings["claim"] == "confidence_accuracy"]
    assert len(ctx["attacked"]) == a.dropna(subset=["attack"]).groupby(["model", "attack", "operating_point"]).ngroups
    html = render_files([run])["runs/tiny/findings.html"].decode("utf-8")
    assert "Confidence and accuracy are linearly dependent." in html
    for r in ctx["rows"]:
        assert f"<strong>{r['r2_gap']['verdict']}</strong>" in html
    from site_builder.render import unpacked

    spec = json.loads(str(ctx["spec"]))
    columns = [unpacked(d["packed"]) for d in spec["datasets"].values()]
    fits = [dict(zip(c, values)) for c in columns if "fit" in c for values in zip(*c.values())]
    unc = run.uncertainty[run.uncertainty["condition"] == "clean"]
    for key in mc:
        g = unc[unc["model"] == key]
        p, c = g["true_prob"].to_numpy(), g["confidence"].to_numpy()
        label = pages.labels(run)[key]
        for name, feature in zip(ctx["fits"], (lambda v: v, lambda v: v * (1 - v))):
            line = [row for row in fits if row["model"] == label and row["fit"] == name]
            slope, intercept = np.polyfit(feature(p), c, 1)
            assert len(line) == 101
            for row in line[::25]:
                assert row["confidence"] == pytest.approx(intercept + slope * feature(row["true_prob"]), abs=1e-6)
    # every page of the run names the findings first in its navigation
    uncertainty = render_files([run])["runs/tiny/uncertainty.html"].decode("utf-8")
    nav = uncertainty.split("<nav")[1].split("</nav>")[0]
    assert nav.index("findings.html") < nav.index("uncertainty.html")


def test_a_run_too_small_for_findings_says_so_instead_of_failing_to_build():
    """Fewer than MIN_IMAGES test images a model: no findings rows, and the page says why (a test run of
    6 STL-10 images used to stop the build)."""
    import dataclasses

    from site_builder import pages
    from site_builder.build import render_files

    run = dataclasses.replace(load_run(RESULTS_FIXTURE), findings=load_run(RESULTS_FIXTURE).findings.iloc[0:0])
    assert pages.findings_page(run).context["spec"] is None
    html = render_files([run])["runs/tiny/findings.html"].decode("utf-8")
    assert f"needs at least {F.MIN_IMAGES} test images" in html and "verdict-line" not in html


def test_iaa_is_found_less_perceptible_only_where_its_paired_differences_say_so():
    """Synthetic attacks table: IAA changes fewer pixels but by more (larger L∞) than FGSM on every image."""
    rng = np.random.default_rng(1)
    n = 40
    rows = []
    for attack, l0, linf in (("iaa", 30, 0.9), ("fgsm", 700, 0.1)):
        for i in range(n):
            rows.append({"image_id": i, "model": "m", "attack": attack, "operating_point": "minimal", "success": True,
                         "l0": l0 + rng.integers(0, 5), "l2": 2.0 + rng.normal(0, 0.3), "linf": linf,
                         "perceptual_distance": 50.0, "ssim": 0.9 if attack == "iaa" else 0.5})
    rows[0]["success"] = False  # a failure is in no comparison
    found = {r["measure"]: r for r in F.perceptibility(pd.DataFrame(rows), resamples=200) if r.get("baseline") == "fgsm"}
    assert found["l0"]["verdict"] == F.HOLDS and found["l0"]["n"] == n - 1
    assert found["l0"]["value"] == pytest.approx(np.mean([r["l0"] for r in rows[1:n]]) - np.mean([r["l0"] for r in rows[n + 1:]]))
    assert found["linf"]["verdict"] == F.FAILS  # larger L∞: more perceptible by that measure
    assert found["ssim"]["verdict"] == F.HOLDS  # larger SSIM: less perceptible
    assert found["l2"]["verdict"] == F.UNCLEAR  # the same distribution on both sides
    assert found["perceptual_distance"]["verdict"] == F.UNCLEAR and found["perceptual_distance"]["low"] == 0


def test_claim_b_rows_recompute_from_the_attacks_and_survival_tables():
    table = pd.read_parquet(RESULTS_FIXTURE / "findings.parquet")
    att = pd.read_parquet(RESULTS_FIXTURE / "attacks.parquet")
    surv = pd.read_parquet(RESULTS_FIXTURE / "survival.parquet")
    seen = table[(table["claim"] == "iaa_imperceptible") & table["baseline"].notna()]
    assert set(seen["measure"]) == set(F.PERCEPTIBILITY) and set(seen["baseline"]) <= set(F.SEED_BASELINES)
    won = att[att["success"]]
    for r in seen.itertuples():
        pick = won[(won["model"] == r.model) & (won["operating_point"] == r.operating_point)]
        a = pick[pick["attack"] == "iaa"].set_index("image_id")[r.measure]
        b = pick[pick["attack"] == r.baseline].set_index("image_id")[r.measure]
        both = a.index.intersection(b.index)
        assert r.n == len(both) and r.value == pytest.approx((a[both] - b[both]).mean())
        assert r.verdict == F.verdict(r.low, r.high, F.PERCEPTIBILITY[r.measure])
    robust = table[(table["claim"] == "iaa_robust") & table["baseline"].notna()]
    assert {"jpeg75", "gaussian0.05", "median3"} <= set(robust["measure"])
    assert any(m.startswith("transfer-") for m in robust["measure"])
    for r in robust.itertuples():
        transform, target = (("transfer", r.measure[len("transfer-"):]) if r.measure.startswith("transfer-")
                             else (r.measure, r.model))
        pick = surv[(surv["model"] == r.model) & (surv["operating_point"] == r.operating_point)
                    & (surv["transform"] == transform) & (surv["target"] == target)]
        a = pick[pick["attack"] == "iaa"].set_index("image_id")["fooled"].astype(float)
        b = pick[pick["attack"] == r.baseline].set_index("image_id")["fooled"].astype(float)
        both = a.index.intersection(b.index)
        assert r.n == len(both) and r.value == pytest.approx((a[both] - b[both]).mean())
        assert r.verdict == F.verdict(r.low, r.high)
        assert r.low <= r.value <= r.high


def test_claims_c_and_d_are_the_paired_differences_of_the_detection_and_adaptive_tables():
    table = pd.read_parquet(RESULTS_FIXTURE / "findings.parquet")
    det = pd.read_parquet(RESULTS_FIXTURE / "detection.parquet")
    adaptive = pd.read_parquet(RESULTS_FIXTURE / "adaptive.parquet")
    c = table[table["claim"] == "mc_detects"]
    mc = [m["key"] for m in json.loads((RESULTS_FIXTURE / "manifest.json").read_text())["models"]
          if m["method"] == "mc_dropout"]  # the claims are about MC dropout: its models only
    mine = det[(det["reference"] == "adversarial") & det["operating_point"].isin(["minimal", "confident"])
               & (det["score"] != "max_prob") & det["model"].isin(mc)]
    assert len(c) == len(mine) > 0 and (c["baseline"] == "max_prob").all()
    merged = c.merge(mine, left_on=["model", "attack", "operating_point", "measure"],
                     right_on=["model", "attack", "operating_point", "score"])
    assert len(merged) == len(c)
    assert np.allclose(merged["value"], merged["delta_vs_baseline"]) and (merged["n"] == merged["n_adv"]).all()
    assert all(v == F.verdict(lo, hi) for v, lo, hi in zip(merged["verdict"], merged["delta_low"], merged["delta_high"]))
    d = table[table["claim"] == "adaptive_evades"].merge(adaptive, left_on=["model", "attack", "baseline", "eps", "measure"],
                                                         right_on=["model", "attack", "baseline", "eps", "score"])
    assert len(d) == len(adaptive[adaptive["model"].isin(mc)]) > 0 and np.allclose(d["value"], d["delta"], equal_nan=True)
    # the adaptive attacker "evades" when it lowers the AUROC: the interval below 0 holds
    assert all(v == F.verdict(lo, hi, -1) for v, lo, hi in zip(d["verdict"], d["delta_low"], d["delta_high"]))


def test_the_findings_cards_show_the_tables_verdicts_and_link_to_the_images_behind_them():
    from urllib.parse import parse_qs

    from site_builder import pages
    from site_builder.build import render_files

    run = load_run(RESULTS_FIXTURE)
    ctx = pages.findings_page(run).context
    b = ctx["b"]
    seen = run.findings[(run.findings["claim"] == "iaa_imperceptible") & run.findings["baseline"].notna()]
    first = b["perceptible"]["rows"][0]
    assert first["label"] == pages.MEASURE_LABELS["l0"]
    col = b["perceptible"]["columns"][0]  # "vs FGSM, minimal"
    baseline = next(a for a in F.SEED_BASELINES if run.cards[a]["label"] in col)
    point = col.rsplit(", ", 1)[1]
    cell = first["cells"][0]
    expect = seen[(seen["measure"] == "l0") & (seen["baseline"] == baseline) & (seen["operating_point"] == point)]
    assert cell["total"] == len(expect) and {a["verdict"]: a["count"] for a in cell["answers"]} == \
        expect["verdict"].value_counts().to_dict()
    for link in b["links"]:
        q = {k: v[0] for k, v in parse_qs(link["href"].split("#", 1)[1]).items()}
        assert q["point"] == "minimal" and q["outcome-iaa"] == q["outcome-fgsm"] == "fooled"
        assert q["model"] in run.model_keys
    assert ctx["c"] is not None and ctx["d"] is not None
    html = render_files([run])["runs/tiny/findings.html"].decode("utf-8")
    assert "IAA is imperceptible, and more robust than FGSM and L-BFGS." in html
    assert 'id="spec-iaa-robust"' in html and 'id="spec-mc-detects"' in html and 'id="spec-adaptive"' in html
    assert 'id="spec-equal-cost"' in html and "Not measured: the run has no ensemble" not in html
