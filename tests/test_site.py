"""The site builder: charts tested as data, deterministic builds, offline-safe pages."""
from __future__ import annotations

import json
import re

import subprocess
import sys

import altair as alt
import markupsafe
import numpy as np
import pandas as pd
import pytest

from compute import contract as tables
from compute.contract import class_colours
from conftest import RESULTS_FIXTURE, ROOT
from site_builder import chart_data, charts, explorer_data, pages
from site_builder.build import build_site, render_files
from site_builder.load import ResultsError, load_run
from site_builder.render import script_json


@pytest.fixture(scope="module")
def run():
    return load_run(RESULTS_FIXTURE)


def test_the_results_fixture_is_current(run):
    """When this fails, the results schema changed: run `python tests/make_fixture.py`."""
    assert run.manifest["schema_version"] == tables.SCHEMA_VERSION
    for name, schema in tables.SCHEMAS.items():
        assert list(getattr(run, name).columns) == schema.names, name


def test_the_site_builder_never_imports_torch():
    modules = sorted(p.stem for p in (ROOT / "site_builder").glob("*.py") if p.stem != "__init__")
    code = (f"import sys\nfor m in {modules!r}: __import__('site_builder.' + m)\n"
            "print('torch' in sys.modules, len(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False", out.stdout
    assert len(modules) >= 8


def test_the_site_knows_attacks_only_by_their_cards(tmp_path):
    """Labels, colours, budgets and the adaptive flag come from the manifest's cards, never from names."""
    import shutil

    results = tmp_path / "tiny"
    shutil.copytree(RESULTS_FIXTURE, results)
    manifest = json.loads((results / "manifest.json").read_text())
    manifest["attacks"]["cards"]["fgsm"].update(label="Gradient sign", colour="#123456", limit_caption="ε ≤ 9")
    manifest["attacks"]["cards"]["eot_pgd"]["label"] = "Knows-the-defence"
    (results / "manifest.json").write_text(json.dumps(manifest))
    run = load_run(results)
    assert pages.attack_colours(run)["Gradient sign"] == "#123456"
    assert pages.limit_captions(run)["fgsm"] == "ε ≤ 9"
    files = render_files([run])
    attacks_page = files["runs/tiny/attacks.html"].decode()
    assert "Gradient sign" in attacks_page and "#123456" in attacks_page and "Robustness curve (Gradient sign)" in attacks_page
    said = " ".join(pages.detection_takeaway(run.detection, run.adaptive, "cnn-p0.2", run.cards))
    assert "The adaptive attacker (Knows-the-defence" in said and "(EOT-PGD" not in said
    assert "Gradient sign" in files["runs/tiny/good-bad.html"].decode()  # the ranking attack's label


def test_image_points_has_one_row_per_image_with_class_names(run):
    pts = chart_data.image_points(run.uncertainty, run.class_names, "cnn-p0.2")
    assert len(pts) == len(run.images) and pts["image_id"].is_unique
    assert set(pts["class_name"]) <= set(run.class_names)
    assert list(pts.columns) == chart_data.POINT_COLUMNS


def test_dashboard_links_brush_to_bars_and_class_pick_to_points(run):
    pts = chart_data.image_points(run.uncertainty, run.class_names, "cnn-p0.2")
    cal = run.calibration[run.calibration["model"] == "cnn-p0.2"]
    spec = charts.uncertainty_dashboard(pts, cal, run.class_names).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert params["brush"]["select"]["type"] == "interval" and params["brush"]["views"] == ["scatter"]
    assert params["legend_pick"]["bind"] == "legend"
    bar_views = [c["layer"][0]["name"] for c in spec["vconcat"][0]["hconcat"][1:]]
    assert set(bar_views) <= set(params["bar_pick"]["views"]) and bar_views[0].startswith("confidence_bars")
    rows = next(iter(spec["datasets"].values()))
    top, bottom = spec["vconcat"]
    scatter, conf_bars, acc_bars = top["hconcat"]
    assert scatter["title"] == "Confidence vs Accuracy"
    assert scatter["encoding"]["x"]["field"] == "true_prob" and scatter["encoding"]["y"]["field"] == "confidence"
    assert "param" in json.dumps(scatter["encoding"]["opacity"]["condition"])
    for chart, field, title in ((conf_bars, "confidence", "Confidence vs Class"),
                                (acc_bars, "true_prob", "Accuracy vs Class")):
        assert chart["title"]["text"] == title
        bars, whiskers = chart["layer"]
        assert bars["mark"]["type"] == "bar" and whiskers["mark"]["type"] == "rule"
        assert bars["encoding"]["y"]["scale"]["domain"] == [0, 1]  # from zero: no cut axis
        assert bars["encoding"]["x"]["sort"] == run.class_names
        steps = bars["transform"]
        assert steps[0] == {"filter": {"param": "brush"}} and whiskers["transform"] == steps
        means = _per_class_means(steps, rows, field)
        by_class = pd.DataFrame(rows).groupby("class_name")[field]
        for name, got in means.items():
            values = by_class.get_group(name)
            half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
            assert got == pytest.approx((values.mean(), max(0, values.mean() - half),
                                         min(1, values.mean() + half), len(values)))
    hist_fields = [c["encoding"]["x"]["field"] for c in bottom["hconcat"][:2]]
    assert hist_fields == ["entropy", "mutual_info"]
    rows = next(iter(spec["datasets"].values()))
    assert len(rows) == len(run.images)


def _per_class_means(steps: list[dict], rows: list[dict], field: str) -> dict[str, tuple]:
    """What the browser draws from the per-class transforms, with no brush: (mean, low, high, n) per
    class. Evaluates the spec's own aggregate and calculate steps, so a wrong formula there fails."""
    aggregate = next(s["aggregate"] for s in steps if "aggregate" in s)
    ops = {a["as"]: (a["op"], a.get("field")) for a in aggregate}
    frame = pd.DataFrame(rows)
    out = {}
    for name, group in frame.groupby("class_name"):
        datum = {}
        for alias, (op, col) in ops.items():
            datum[alias] = {"mean": lambda: group[col].mean(), "stdev": lambda: group[col].std(ddof=1),
                            "count": lambda: float(len(group))}[op]()
        for step in steps:
            if "calculate" in step:
                expression = step["calculate"].replace("datum.", "")
                datum[step["as"]] = eval(expression, {"max": max, "min": min, "sqrt": np.sqrt}, dict(datum))
        out[name] = tuple(datum[f"{field}_{s}"] for s in ("mean", "low", "high", "n"))
    return out


def test_reliability_diagram_plots_only_filled_bins():
    cal = pd.DataFrame({"lower": [0.0, 0.5], "upper": [0.5, 1.0], "n_images": [0, 3],
                        "mean_top_prob": [float("nan"), 0.9], "accuracy": [float("nan"), 1.0]})
    spec = charts.reliability_diagram(cal).to_dict()
    data = spec["datasets"][spec["layer"][0]["data"]["name"]]
    assert data == [{"lower": 0.5, "upper": 1.0, "n_images": 3, "mean_top_prob": 0.9, "accuracy": 1.0}]
    # every bin's N is written above its bar, as an integer, at the bin's middle
    text = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    assert text["encoding"]["text"] == {"field": "n_images", "type": "quantitative", "format": "d"}
    assert text["encoding"]["x"]["field"] == "middle"
    assert [r["middle"] for r in spec["datasets"][text["data"]["name"]]] == [0.75]


def test_building_twice_gives_identical_files(run, tmp_path):
    build_site([run.path], tmp_path / "a")
    build_site([run.path], tmp_path / "b")
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert a.keys() == b.keys() and a == b
    assert {str(p) for p in a} >= {"index.html", "runs/tiny/uncertainty.html", "runs/tiny/provenance.html",
                                   "static/vega.js", "static/site.js", "static/style.css"}


def test_pages_use_relative_urls_and_no_network(run):
    files = render_files([run])
    for path, data in files.items():
        if not path.endswith(".html"):
            continue
        html = data.decode()
        for url in re.findall(r'(?:src|href)="([^"]*)"', html) + re.findall(r"url\('([^']*)'\)", html):
            assert not re.match(r"^(https?:)?//|^/", url), (path, url)
            assert not url.startswith("file:"), (path, url)


def test_inline_json_cannot_close_its_script_element():
    text = str(script_json({"class_name": "</script><img src=x onerror=alert(1)>", "x": "a&b\u2028"}))
    assert "</script" not in text and "<img" not in text and "&" not in text
    assert json.loads(text) == {"class_name": "</script><img src=x onerror=alert(1)>", "x": "a&b\u2028"}


def test_altered_or_unfinished_results_are_refused(run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run.path, copy)
    with open(copy / "metrics.parquet", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(ResultsError, match="does not match the sha256"):
        load_run(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ResultsError, match="compute did not finish"):
        load_run(copy)


def test_a_failed_build_leaves_the_previous_site(run, tmp_path):
    site = tmp_path / "site"
    build_site([run.path], site)
    before = (site / "index.html").read_bytes()
    with pytest.raises(ResultsError):
        build_site([run.path, tmp_path / "nothing"], site)
    assert (site / "index.html").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_success_rates_report_fgsm_per_epsilon_and_the_other_attacks(run):
    rates = chart_data.success_points(run.success_rates, "cnn-p0.2", pages.attack_labels(run))
    # named as the detection page names its rows (chart_data.variant)
    assert set(rates["variant"]) == {"FGSM ε=0.05", "FGSM ε=0.1", "FGSM ε=0.2", "FGSM ε=0.3", "L-BFGS minimal",
                                     "L-BFGS confident", "IAA minimal", "IAA confident", "EOT-PGD ε=0.1", "EOT-PGD ε=0.2",
                                     "PGD ε=0.1", "PGD ε=0.2", "PGD ε=0.3",
                                     "EOT-PGD ε=0.3"}
    rows = run.attacks[(run.attacks["model"] == "cnn-p0.2") & (run.attacks["attack"] == "fgsm")
                       & (run.attacks["eps"] == 0.1) & run.attacks["clean_correct"]]
    label = rows["image_id"].map(run.images.set_index("image_id")["label"])
    for name, group in rows.groupby(label):
        got = rates[(rates["variant"] == "FGSM ε=0.1") & (rates["class_name"] == run.class_names[name])]
        assert got["success_rate"].iloc[0] == pytest.approx(group["success"].mean(), abs=1e-5)
        assert got["n_images"].iloc[0] == len(group)  # N: the clean-correct images of the class


def test_attack_summary_is_recomputable_from_the_attacks_table(run):
    for r in run.attack_summary.itertuples():
        rows = run.attacks[(run.attacks["model"] == r.model) & (run.attacks["attack"] == r.attack)
                           & (run.attacks["operating_point"] == r.operating_point)]
        attacked = rows[rows["clean_correct"]]
        assert r.n_attacked + r.n_wrong_before == len(rows)
        assert r.n_attacked == len(attacked) and r.n_success == attacked["success"].sum()
        assert not rows.loc[~rows["clean_correct"], "success"].any()  # wrong before the attack: never a success
        assert r.success_rate == pytest.approx(attacked["success"].mean())
        assert r.failure_rate == pytest.approx(1 - attacked["success"].mean())
        assert r.mean_l2 == pytest.approx(rows.loc[rows["success"], "l2"].mean())


def test_attack_dashboard_is_linked(run):
    points = chart_data.attack_points(run.attacks, run.uncertainty, run.images, run.class_names, "cnn-p0.3", pages.attack_labels(run))
    assert set(points["attack"]) == {run.cards[a]["label"] for a in run.attack_names}  # named by their cards
    assert len(points) == len(run.attacks[(run.attacks["model"] == "cnn-p0.3") & (run.attacks["operating_point"] == "minimal")])
    clean = run.uncertainty[(run.uncertainty["model"] == "cnn-p0.3") & (run.uncertainty["condition"] == "clean")]
    first = points.iloc[0]
    assert first["entropy_clean"] == pytest.approx(
        clean.set_index("image_id").loc[first["image_id"], "entropy"], abs=1e-4)
    rates = chart_data.success_points(run.success_rates, "cnn-p0.3", pages.attack_labels(run))
    spec = charts.attack_dashboard(points, rates, run.class_names, pages.attack_colours(run)).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    picks = params["bar_pick"]["views"]  # the success cells (Altair numbers a named view inside a layer)
    assert len(picks) == 1 and picks[0].startswith("success_bars") and params["attack_pick"]["bind"] == "legend"
    assert params["l2_brush"]["views"] == ["l2_hist"]
    text = json.dumps(spec)
    views = [v for row in spec["vconcat"] for v in row["hconcat"]]
    by_name = {v.get("name"): v for v in views}
    for name in ("matrix", "linf_hist", "pd_hist", "entropy_versus", "mi_versus"):
        filters = json.dumps(by_name[name]["transform"])
        assert "bar_pick" in filters and "l2_brush" in filters, name
    assert by_name["matrix"]["encoding"]["x"]["field"] == "adv_name"
    assert '"datum.success"' in text
    for name in ("entropy_versus", "mi_versus"):  # each clean image counted once, however many attacks it met
        steps = by_name[name]["transform"]
        window = next(t for t in steps if "window" in t)
        assert window["groupby"] == ["image", "image_id"] and window["window"][0]["op"] == "row_number"
        assert steps[steps.index(window) + 1] == {"filter": "datum.image == 'adversarial' || datum.copy == 1"}
    # the rows those views count: every clean-correct image once, every successful adversarial once
    assert points.groupby("image_id")["clean_correct"].first().sum() < points["clean_correct"].sum()


def test_explorer_data_holds_every_image_with_its_outcomes_scores_and_map(run):
    data = explorer_data.explorer_data(run)
    n = len(run.images)
    assert data["ids"] == run.images["image_id"].tolist()  # sprite-sheet order: position = tile
    assert [m["key"] for m in data["models"]] == run.model_keys == ["cnn-p0.2", "cnn-p0.3", "cnn-deep3", "cnn-subset3"]
    assert data["colours"]["classes"] == class_colours(len(run.class_names))  # the one palette
    assert data["colours"]["attacks"] == {a: run.cards[a]["colour"] for a in run.attack_names}
    for m in data["models"]:
        p = m["key"]
        clean = run.uncertainty[(run.uncertainty["model"] == p) & (run.uncertainty["condition"] == "clean")]
        clean = clean.set_index("image_id").loc[data["ids"]]
        assert m["plain_pred"] == clean["plain_pred"].tolist()  # the dropout-off prediction the attacks start from
        assert "pred" not in m  # the MC mean's prediction is another figure, never offered as the clean one
        assert np.allclose(np.array(m["entropy"]) / data["scale"], clean["entropy"], atol=1 / data["scale"])
        minimal = run.attacks[(run.attacks["model"] == p) & (run.attacks["operating_point"] == "minimal")]
        named = {v: k for k, v in data["outcomes"].items()}
        assert set(m["outcomes"]) == {q["key"] for q in data["points"]}
        for point, by_attack in m["outcomes"].items():
            op, eps = (("budget", float(point[3:])) if point.startswith("eps") else (point, None))
            at = run.attacks[(run.attacks["model"] == p) & (run.attacks["operating_point"] == op)]
            if eps is not None:
                at = at[np.isclose(at["eps"], eps)]
            for attack, codes in by_attack.items():
                rows = at[at["attack"] == attack].set_index("image_id").reindex(data["ids"])
                for code, (correct, success) in zip(codes, zip(rows["clean_correct"], rows["success"])):
                    expected = ("not attacked" if correct != correct else "wrong before" if not correct
                                else "fooled" if success else "not fooled")
                    assert named[code] == expected, (point, attack)
        assert data["ranking"]["attack"] == "fgsm"  # attacks.ranking: FGSM's smallest flipping epsilon
        ranked = minimal[minimal["attack"] == "fgsm"].set_index("image_id").reindex(data["ids"])
        # None: not fooled, or not attacked (an ensemble is attacked on a subset)
        expected = [None if ok != ok or not ok else round(v * data["scale"])
                    for v, ok in zip(ranked["min_eps"], ranked["success"])]
        assert m["ranking"] == expected
        assert set(m["maps"]) == {"pca", "tsne"}
        for conditions in m["maps"].values():
            assert set(conditions) == {"clean", *run.attack_names, *[f"{a}-confident" for a in run.attack_names]}
            xs = [v for c in conditions.values() for v in c["x"] if v is not None]
            assert min(xs) == 0 and max(xs) == data["grid"]  # one box per map, clean and placed together
            assert None not in conditions["clean"]["x"] and len(conditions["clean"]["x"]) == n


def test_the_explorer_opens_where_outcomes_vary_never_at_the_minimal_point_by_construction():
    F, N = explorer_data.OUTCOMES["fooled"], explorer_data.OUTCOMES["not fooled"]
    points = [{"key": "minimal", "attacks": ["a", "b"]}, {"key": "confident", "attacks": ["a", "b"]},
              {"key": "eps0.1", "attacks": ["a"]}]
    outcomes = {"minimal": {"a": [F] * 10, "b": [F] * 10},
                "confident": {"a": [F] * 7 + [N] * 3, "b": [F] * 10},
                "eps0.1": {"a": [F] * 5 + [N] * 5, "b": [0] * 10}}
    # eps0.1 varies more, but only attack "a" has it: the shared point that varies wins
    assert explorer_data.default_point(points, outcomes, ["a", "b"]) == "confident"
    outcomes["confident"]["b"] = [F] * 4 + [N] * 6
    outcomes["minimal"]["a"] = [F] * 4 + [N] * 6
    assert explorer_data.default_point(points, outcomes, ["a", "b"]) == "confident"  # 9 rarer marks against 6
    # no point shared by every attack: all points compete
    assert explorer_data.default_point(points[2:], outcomes, ["a", "b"]) == "eps0.1"


def test_robustness_curve_starts_at_clean_accuracy(run):
    clean = {m["label"]: m["accuracy"] for m in run.manifest["models"]}
    points = chart_data.robustness_points(run.robustness, pages.labels(run))
    first = points[points["eps"] == 0].set_index("model")["accuracy"]
    assert first["MC dropout p = 0.2"] == pytest.approx(clean["MC dropout p = 0.2"], abs=1e-5)
    eps = run.manifest["attacks"]["resolved"]["fgsm"]["eps"]
    assert len(points) == len(run.model_keys) * (1 + len(eps))
    fgsm = run.attacks[(run.attacks["attack"] == "fgsm") & (run.attacks["eps"] == eps[0]) & (run.attacks["model"] == "cnn-p0.3")]
    at = points[(points["model"] == "MC dropout p = 0.3") & (points["eps"] == eps[0])]["accuracy"].iloc[0]
    labels = fgsm["image_id"].map(run.images.set_index("image_id")["label"])
    assert at == pytest.approx((fgsm["adv_pred"] == labels).mean(), abs=1e-5)  # all images, wrong before = wrong


def test_altairs_row_guard_is_lifted_inside_the_build_only(run):
    import altair as alt

    render_files([run])  # lifts the guard while it renders
    big = pd.DataFrame({"eps": [0.0] * 5001, "accuracy": 0.5, "model": "dropout p = 0.2"})
    with pytest.raises(alt.MaxRowsError):
        charts.robustness_curve(big, "FGSM", {"dropout p = 0.2": "#006BA4"}).to_dict()
    with alt.data_transformers.disable_max_rows():
        assert len(charts.robustness_curve(big, "FGSM", {"dropout p = 0.2": "#006BA4"}).to_dict()["datasets"].popitem()[1]) == 5001


def test_a_site_shows_every_run_and_refuses_two_with_one_name(run, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(run.path, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["run"] = "second"
    (other / "manifest.json").write_text(json.dumps(manifest))
    report = build_site([run.path, other], tmp_path / "site")
    assert report.runs == 2
    index = (tmp_path / "site" / "index.html").read_text()
    # each run's name opens its findings, which lead its navigation
    assert 'href="runs/tiny/findings.html"' in index and 'href="runs/second/findings.html"' in index
    assert (tmp_path / "site" / "runs" / "second" / "attacks.html").is_file()
    with pytest.raises(ResultsError, match="both named run 'tiny'; give runs distinct names"):
        build_site([run.path, run.path], tmp_path / "site2")


def test_detection_rows_are_recomputable_from_the_uncertainty_and_attacks_tables(run):
    unc, att = run.uncertainty, run.attacks
    checked = 0
    for r in run.detection[run.detection["n_adv"] > 0].itertuples():
        # transfer: tests/test_ensembles.py; ood: tests/test_ood.py
        if r.score not in ("entropy", "max_prob") or r.reference in ("transfer", "ood"):
            continue
        rows = att[(att["model"] == r.model) & (att["attack"] == r.attack) & (att["operating_point"] == r.operating_point)
                   & (att["eps"].fillna(-1) == (-1 if r.eps != r.eps else r.eps))]
        # Negatives: the clean-correct images of the attack's own image set (its subset, for EOT-PGD and PGD).
        clean = unc[(unc["model"] == r.model) & (unc["condition"] == "clean")
                    & unc["image_id"].isin(rows.loc[rows["clean_correct"], "image_id"])]
        hit = rows.loc[rows["success"], "image_id"]
        if r.reference == "unattacked":
            positives = clean
        else:
            positives = unc[(unc["model"] == r.model) & (unc["attack"] == r.attack)
                            & (unc["operating_point"] == r.operating_point) & (unc["noise"] == (r.reference == "noise"))
                            & (unc["eps"].fillna(-1) == (-1 if r.eps != r.eps else r.eps))]
        positives = positives[positives["image_id"].isin(hit)]
        sign = -1.0 if r.score == "max_prob" else 1.0  # max_prob flags an image when it is low
        neg, pos = sign * clean[r.score].to_numpy(), sign * positives[r.score].to_numpy()
        assert (r.n_clean, r.n_adv) == (len(neg), len(pos))
        wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        assert r.auroc == pytest.approx(wins / (len(neg) * len(pos)), abs=1e-12)
        assert r.auroc_low <= r.auroc <= r.auroc_high
        checked += 1
    assert checked >= 20
    assert set(run.detection["attack"]) == {*run.attack_names, "ood"}  # and the OOD images' rows
    assert set(run.detection["reference"]) == {"adversarial", "noise", "unattacked", "transfer", "ood"}


def test_risk_coverage_is_recomputable(run):
    rc = run.risk_coverage
    row = rc[(rc["model"] == "cnn-p0.3") & (rc["condition"] == "lbfgs-confident") & (rc["score"] == "entropy")]
    from compute.detection import replaced

    of = run.uncertainty[run.uncertainty["model"] == "cnn-p0.3"]
    adv = of[of["condition"] == "lbfgs-confident"].set_index("image_id")
    clean = of[of["condition"] == "clean"].set_index("image_id").loc[adv.index]
    # The population a deployed model meets: half of the images (the same for every attack) attacked.
    attacked = replaced(adv.index.to_numpy(), run.config.detection.attacked_share, run.config.seed)
    unc = pd.concat([adv[attacked], clean[~attacked]]).loc[adv.index]
    order = np.argsort(unc["entropy"].to_numpy(), kind="stable")
    wrong = (unc["pred"] != unc["label"]).to_numpy()[order]
    risk = np.cumsum(wrong) / np.arange(1, len(wrong) + 1)
    assert row["aurc"].iloc[0] == pytest.approx(risk.mean())
    assert row["n_images"].iloc[0] == len(unc) and row["coverage"].iloc[-1] == 1.0
    assert row["n_attacked"].iloc[0] == attacked.sum() and 0 < attacked.sum() < len(unc)
    assert row["risk"].iloc[-1] == pytest.approx(wrong.mean()) == pytest.approx(row["random_aurc"].iloc[0])
    k = np.arange(1, len(wrong) + 1)
    oracle = np.mean(np.maximum(k - (~wrong).sum(), 0) / k)
    assert row["e_aurc"].iloc[0] == pytest.approx(risk.mean() - oracle)


def test_detection_dashboard_is_linked(run):
    points = chart_data.detection_points(run.detection, "cnn-p0.2", pages.attack_labels(run))
    assert set(points["kind"]) == {"adversarial", "noise control", "unattacked", "out-of-distribution"}
    chart = charts.detection_dashboard(points, chart_data.roc_curve_points(run.roc, "cnn-p0.2", pages.attack_labels(run)),
                                       chart_data.eps_curve_points(run.detection, "cnn-p0.2", "fgsm", "FGSM"),
                                       chart_data.risk_points(run.risk_coverage, "cnn-p0.2", pages.attack_labels(run)), "FGSM confident",
                                       {"auroc": "a", "roc": "r", "eps": "e", "risk": "k"}, "FGSM")
    with alt.data_transformers.disable_max_rows():  # as the build renders it
        spec = chart.to_dict()
    text = json.dumps(spec)
    params = {p["name"]: p for p in spec["params"]}
    assert "legend" in params["score_pick"]["bind"]  # bound to the score legend
    assert params["variant_pick"]["value"] == [{"variant": "FGSM confident"}]
    # The ROC and risk-coverage views show only what is picked: positives and scores.
    for name in ("roc_curves", "risk_coverage"):
        view = next(v for v in _views(spec) if v.get("name") == name)
        filters = json.dumps(view)
        assert "variant_pick" in filters and "score_pick" in filters, name
    assert '"facet"' in text  # uncertainty against epsilon, one panel per score
    eps = chart_data.eps_curve_points(run.detection, "cnn-p0.2", "fgsm", "FGSM")
    assert set(eps["image"]) == {"FGSM adversarial", "noise control"} and (eps["eps"] == 0).any()


def _views(spec):
    """Every view of a (nested) concatenation."""
    out = [spec]
    for key in ("vconcat", "hconcat"):
        for child in spec.get(key, []):
            out += _views(child)
    return out


def _answer_rows(deltas: list[tuple[float, float, float]]) -> pd.DataFrame:
    """Detection rows of one model, one adversarial set per (Δ, low, high), each scored by entropy."""
    return pd.DataFrame([{"model": "m", "attack": f"a{k}", "operating_point": "minimal", "eps": float("nan"),
                          "reference": "adversarial", "score": "entropy", "n_clean": 480, "n_adv": 100 + k,
                          "delta_vs_baseline": d, "delta_low": lo, "delta_high": hi}
                         for k, (d, lo, hi) in enumerate(deltas)])


def test_the_detection_answer_is_decided_by_the_paired_intervals():
    wins = _answer_rows([(0.03, 0.01, 0.05), (0.02, 0.005, 0.04), (0.0, -0.01, 0.01)])
    loses = _answer_rows([(-0.03, -0.05, -0.01), (-0.002, -0.004, -0.001), (0.01, -0.01, 0.02)])
    tie = _answer_rows([(0.03, 0.01, 0.05), (-0.03, -0.05, -0.01), (0.0, -0.01, 0.01)])
    assert pages.detection_answer(wins, "m")[0] == "Yes"
    assert pages.detection_answer(loses, "m")[0] == "No"
    assert pages.detection_answer(tie, "m")[0] == "Mixed"  # one pair each way: the answer depends on the set
    unclear = _answer_rows([(0.01, -0.01, 0.03), (-0.01, -0.03, 0.01)])
    assert pages.detection_answer(unclear, "m")[0] == "Not distinguishable"
    # Many pairs above do not outvote a few below: the sentence counts both.
    assert pages.detection_answer(pd.concat([wins, wins.assign(attack="b"), loses.iloc[:1]]), "m")[0] == "Mixed"
    sentence = pages.detection_answer(loses, "m")[1]
    assert sentence.startswith("No: over 3 pairs") and "from -0.030 to +0.010" in sentence
    assert "above 0 for 0 pairs" in sentence and "below 0 for 2" in sentence and "N = 480" in sentence
    # Noise controls and unattacked references never enter the answer.
    noise = tie.assign(reference="noise", delta_low=0.5, delta_high=0.6)
    assert pages.detection_answer(pd.concat([loses, noise]), "m")[0] == "No"


def test_detection_takeaway_says_what_the_numbers_say(run):
    sentences = pages.detection_takeaway(run.detection, run.adaptive, "cnn-p0.2", run.cards)
    assert sentences[0] == pages.detection_answer(run.detection, "cnn-p0.2")[1]
    assert any(s.startswith("References (entropy") for s in sentences)
    adaptive = next(s for s in sentences if s.startswith("The adaptive attacker (EOT-PGD"))
    row = run.adaptive[(run.adaptive["model"] == "cnn-p0.2") & (run.adaptive["score"] == "entropy")]
    top = row.loc[row["eps"].idxmax()]
    assert f"entropy AUROC {top['auroc']:.2f}" in adaptive and f"against {top['auroc_baseline']:.2f} for PGD" in adaptive
    assert f"Δ = {top['delta']:+.2f} [{top['delta_low']:+.2f}, {top['delta_high']:+.2f}]" in adaptive


def test_every_detection_figure_says_what_to_take_from_it_with_n_and_interval(run):
    p = "cnn-p0.2"
    points = chart_data.detection_points(run.detection, p, pages.attack_labels(run))
    risk = chart_data.risk_points(run.risk_coverage, p, pages.attack_labels(run))
    rows = run.detection[run.detection["model"] == p]
    said = pages.figure_sentences(points, rows, risk, "L-BFGS confident", "fgsm", "FGSM")
    assert set(said) == {"auroc", "roc", "eps", "risk"}
    assert all(s.startswith("Take-away:") for s in said.values())
    assert all(re.search(r"\[[-+]?\d\.\d+, [-+]?\d\.\d+\]", s) for k, s in said.items() if k != "eps"), said
    # The extremes of the confident sets, with their stored intervals.
    confident = points[points["variant"].str.endswith(" confident") & (points["kind"] == "adversarial")
                       & (points["score"] == "max_prob")].sort_values("auroc")
    worst = confident.iloc[0]
    assert f"{worst['auroc']:.2f} [{worst['auroc_low']:.2f}, {worst['auroc_high']:.2f}] ({worst['variant']})" in said["auroc"]
    picked = rows[(rows["attack"] == "lbfgs") & (rows["operating_point"] == "confident")
                  & (rows["reference"] == "adversarial") & (rows["score"] == "entropy")].iloc[0]
    assert f"Δ {picked['delta_vs_baseline']:+.3f} [{picked['delta_low']:+.3f}, {picked['delta_high']:+.3f}]" in said["roc"]
    budgets = rows[(rows["attack"] == "fgsm") & (rows["operating_point"] == "budget") & (rows["reference"] == "adversarial")
                   & (rows["score"] == "entropy") & (rows["n_adv"] > 0)]
    assert f"above 0 at {int((budgets['gap_low'] > 0).sum())} of {len(budgets)} FGSM budgets" in said["eps"]
    clean = risk[(risk["variant"] == "clean") & (risk["score"] == "entropy")].iloc[0]
    assert (f"E-AURC (entropy; 0 = the oracle) is {clean['e_aurc']:.3f} [{clean['e_aurc_low']:.3f}, "
            f"{clean['e_aurc_high']:.3f}]") in said["risk"]
    assert clean["e_aurc_low"] <= clean["e_aurc"] <= clean["e_aurc_high"]


def test_good_and_bad_is_one_row_per_class_robust_left_vulnerable_right_for_every_attack_and_point(run):
    page = pages.good_bad_page(run)
    label_of = run.images.set_index("image_id")["class_name"]
    seen_weakly_fooled = 0
    for section in page.context["sections"]:
        p = section["key"]
        assert (section["attacks"][0]["attack"], section["attacks"][0]["point"]) == (run.ranking, "minimal")  # the default
        assert sorted((a["attack"], a["point"]) for a in section["attacks"]) == sorted(
            (a, point) for a in run.attack_names for point in ("minimal", "confident"))
        assert len({a["anchor"] for a in section["attacks"]}) == len(section["attacks"])
        for at in section["attacks"]:
            attack, point, column = at["attack"], at["point"], run.cards[at["attack"]]["ranking_column"]
            rows = run.attacks[(run.attacks["model"] == p) & (run.attacks["attack"] == attack)
                               & (run.attacks["operating_point"] == point)].set_index("image_id")
            assert [c["class_name"] for c in at["classes"]] == run.class_names
            for c in at["classes"]:
                robust = [card["image_id"] for card in c["robust"]]
                fragile = [card["image_id"] for card in c["vulnerable"]]
                # half the class's ranked images a side at most (an attack on a subset may have one: none shown)
                assert len(robust) == len(fragile) == min(pages.GOOD_BAD_PER_CLASS, c["n_attacked"] // 2)
                assert not set(robust) & set(fragile)
                if not robust:
                    continue
                assert {label_of[i] for i in robust + fragile} == {c["class_name"]}
                assert rows.loc[robust + fragile, "clean_correct"].all()  # wrong before the attack: not ranked
                score = rows[column].where(rows["success"].astype(bool)).fillna(float("inf"))
                assert score[robust].min() >= score[fragile].max(), attack
                assert list(score[fragile]) == sorted(score[fragile]), attack
                # Among failures: never fooled ranks above fooled without confidence, by how low that stayed.
                failed = [i for i in robust if score[i] == float("inf")]
                weak = [run.class_names[int(rows.loc[i, "adv_pred"])] != c["class_name"] for i in failed]
                assert weak == sorted(weak), (attack, point, failed)
                # "4 → 9" under each fooled image, its adversarial on hover, and a link that keeps the model
                for card in c["robust"] + c["vulnerable"]:
                    r = rows.loc[card["image_id"]]
                    becomes = run.class_names[int(r["adv_pred"])]
                    assert card["href"] == f"image.html#id={card['image_id']}&model={p}"
                    if not r["success"]:
                        assert card["adversarial"] is None
                        if becomes == c["class_name"]:
                            assert card["becomes"] == c["class_name"] and card["label"] == "never"
                        else:  # the confident point: fooled, but below kappa
                            assert point == "confident" and r["adv_prob"] < run.config.attacks.kappa
                            assert card["becomes"] == f"{c['class_name']} → {becomes}"
                            assert card["label"] == f"P = {r['adv_prob']:.2f}"
                            seen_weakly_fooled += 1
                        continue
                    assert card["becomes"] == f"{c['class_name']} → {becomes}"
                    assert card["label"] == f"{run.cards[attack]['ranking_symbol']} = {r[column]:.3f}"
                    t = run.tiles[(run.tiles["model"] == p) & (run.tiles["attack"] == attack)
                                  & (run.tiles["image_id"] == card["image_id"])
                                  & (run.tiles["operating_point"] == point) & (run.tiles["picture"] == "adversarial")].iloc[0]
                    assert card["adversarial"]["sheet"] == f"tiles/{t['sheet']}"
                    assert card["adversarial"]["position"] == (f"-{t['sheet_col'] * card['tile']['width']}px "
                                                               f"-{t['sheet_row'] * card['tile']['height']}px")
    assert seen_weakly_fooled  # the fixture has such images, so that branch is checked


def test_every_chart_the_site_renders_is_valid_vega_lite(run, monkeypatch):
    """The build skips Altair's schema check for speed; this is where every rendered chart gets it."""
    checked: list[str] = []

    def validated(chart: alt.TopLevelMixin) -> str:
        chart.to_dict(validate=True)  # raises on a spec Vega-Lite would reject
        checked.append(type(chart).__name__)
        return "{}"

    monkeypatch.setattr(pages, "chart_json", validated)
    with alt.data_transformers.disable_max_rows():
        pages.gather_pages([run])
    # the dashboards (uncertainty, attacks, detection), the summary bars, the robustness curve and the
    # explorer's two charts, each at least once
    assert len(checked) >= 7



def test_the_site_names_no_folder_of_the_machine_that_made_it(run, tmp_path):
    """A run computed and built in absolute folders (as every real one is) publishes none of them."""
    import shutil

    results = tmp_path / "made" / "here" / "results" / "tiny"
    shutil.copytree(RESULTS_FIXTURE, results)
    manifest = json.loads((results / "manifest.json").read_text())
    manifest["config"]["out"] = str(tmp_path / "made" / "here")
    manifest["provenance"] = {"created": "2026-12-02T20:00:00Z",
                              "code": {"version": "0.1.0", "commit": "ab" * 20, "dirty": True},
                              "command": ["robustviz", "compute", "--config", str(tmp_path / "run.toml"),
                                          f"--out={tmp_path / 'made' / 'here'}"]}
    (results / "manifest.json").write_text(json.dumps(manifest))
    site = tmp_path / "made" / "here" / "site"
    build_site([results], site)
    leaks = [p.relative_to(site) for p in site.rglob("*") if p.is_file()
             if str(tmp_path).encode() in p.read_bytes() or str(ROOT).encode() in p.read_bytes()]
    assert leaks == []
    page = (site / "runs" / "tiny" / "provenance.html").read_text()
    # what made it is still said, paths shortened to their last component
    assert "2026-12-02T20:00:00Z" in page and "commit " + "ab" * 20 + " with uncommitted changes" in page
    assert "robustviz compute --config …/run.toml --out=…/here" in page
    assert "&#34;out&#34;: &#34;…/here&#34;" in page or '"out": "…/here"' in page


def test_provenance_shows_the_attack_settings_the_run_used_not_the_unset_ones(run):
    """A configuration file leaves budgets unset (``eps = []``, ``search_max = 0``) for the dataset to
    fill in; the provenance page shows what the attacks ran with, as the attacks page does."""
    import html as html_lib

    written, resolved = run.manifest["config"]["attacks"], run.manifest["attacks"]["resolved"]
    assert written["fgsm"]["eps"] == [] and resolved["fgsm"]["eps"]  # the fixture has something to resolve
    page = render_files([run])["runs/tiny/provenance.html"].decode("utf-8")
    shown = json.loads(html_lib.unescape(page.split('<pre class="config">')[1].split("</pre>")[0]))
    assert shown["attacks"] == resolved
    assert {k: v for k, v in shown.items() if k != "attacks"} == pages.without_local_paths(
        {k: v for k, v in run.manifest["config"].items() if k != "attacks"})


def test_a_run_without_provenance_says_so(run):
    assert pages.made_by({"config": {}}) == {"created": "not recorded", "code": "not recorded",
                                             "command": "not recorded"}


def test_the_auroc_table_shades_exactly_the_cells_whose_paired_interval_excludes_zero(run):
    html = render_files([run])["runs/tiny/detection.html"].decode("utf-8")
    section = html.split('<section id="cnn-p0.2" data-model-section="cnn-p0.2">')[1].split("</section>")[0]
    table = section.split('<table class="figures detection">')[1].split("</table>")[0]
    assert section.index("<details") < section.index('<table class="figures detection">')  # folded
    rows = re.findall(r'<tr class="[^"]*"><td>([^<]*)</td><td class="num">\d+</td>(.*?)</tr>', table, re.S)
    points = chart_data.detection_points(run.detection, "cnn-p0.2", pages.attack_labels(run)).set_index(["variant", "score"])
    seen = {"above": 0, "below": 0}
    for variant, cells in rows:
        for score, cell in zip(charts.SCORE_NAMES, re.findall(r'<td class="num([^"]*)">([^<]*)</td>', cells)):
            if (variant, score) not in points.index:
                continue
            r = points.loc[(variant, score)]
            expected = "above" if r["delta_low"] > 0 else "below" if r["delta_high"] < 0 else ""
            assert cell[0].strip() == (f"vs {expected}" if expected else ""), (variant, score)
            assert cell[1].startswith({"above": "▲", "below": "▼", "": f"{r['auroc']:.3f}"}[expected])
            if expected:
                seen[expected] += 1
    assert seen["below"] > 0  # the fixture has significant differences, so the check means something
    # One name per row: the risk-coverage table names its sets as the AUROC table does.
    aurc = section.split("E-AURC of every set")[1]
    assert "<td>FGSM minimal</td>" in aurc and "<td>fgsm</td>" not in aurc


def test_a_set_of_images_has_one_name_on_every_page(run):
    """The image view names a condition as the detection page names its rows (pages.condition_label)."""
    from compute.contract import BUDGET, CONFIDENT, MINIMAL, condition_name

    labels = pages.attack_labels(run)
    for attack in run.attack_names:
        for point, eps in [(MINIMAL, None), (CONFIDENT, None), (BUDGET, 0.1)]:
            for noise in (False, True):
                name = condition_name(attack, point, eps, noise)
                assert pages.condition_label(run, name) == chart_data.variant(
                    attack, point, eps, labels, "noise" if noise else "adversarial"), name
    assert pages.condition_label(run, tables.CLEAN) == "clean"
    fgsm = labels["fgsm"]
    assert pages.condition_label(run, "fgsm") == f"{fgsm} minimal"
    assert pages.condition_label(run, "noise-fgsm-eps0.05") == f"noise ~ {fgsm} ε=0.05"
    # The image view's colours are keyed by the same names.
    assert set(pages.condition_colours(run, [tables.CLEAN, "fgsm", "fgsm-confident"])) == {
        "clean", f"{fgsm} minimal", f"{fgsm} confident"}


def _lab(colour: str, deuteranopia: bool) -> np.ndarray:
    """CIELAB of an sRGB colour, optionally as seen with deuteranopia (Machado et al. 2009, severity 1)."""
    c = np.array([int(colour[k:k + 2], 16) for k in (1, 3, 5)]) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    if deuteranopia:
        linear = np.clip(np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                                   [-0.011820, 0.042940, 0.968881]]) @ linear, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("deuteranopia", [False, True])
def test_colours_that_share_a_chart_stay_apart_with_and_without_deuteranopia(run, deuteranopia):
    """The 10 class colours (the map, the per-class bars), and clean beside every attack's minimal and
    confident colour (the image view's conditions): no two closer than 15 ΔE (CIELAB), where a just
    noticeable difference is about 2.3 and Tableau's colour-blind 10 has greys 13 apart."""
    from itertools import combinations

    from compute.contract import PALETTE

    def closest(colours):
        return min((float(np.linalg.norm(_lab(a, deuteranopia) - _lab(b, deuteranopia))), a, b)
                   for a, b in combinations(colours, 2))
    assert closest(class_colours(10))[0] >= 15, closest(class_colours(10))
    conditions = pages.condition_colours(run, list(run.conditions))
    clean = pages.condition_label(run, "clean")
    near = [(float(np.linalg.norm(_lab(conditions[clean], deuteranopia) - _lab(c, deuteranopia))), name)
            for name, c in conditions.items() if name != clean]
    assert conditions[clean] == PALETTE["clean"] and len(near) >= 2 * len(run.attack_names)
    assert min(near)[0] >= 15, min(near)


def test_the_ranking_puts_never_fooled_above_fooled_without_confidence_at_the_confident_point():
    """compute/ranking.py: at the confident point a failure may still have fooled the model (a wrong
    class below kappa). Most robust first: never fooled, by the true class's probability; then fooled
    without confidence, the lower that wrong class the more robust; then the successes, largest figure
    first. The minimal point, where every failure is unfooled, keeps its order by the true class."""
    from compute.ranking import extremes, ranked

    rows = pd.DataFrame({"image_id": [1, 2, 3, 4, 5, 6], "operating_point": ["confident"] * 6,
                         "clean_correct": [True] * 6, "success": [False, False, False, False, True, True],
                         "adv_pred": [0, 0, 7, 7, 7, 7], "adv_prob": [0.55, 0.8, 0.3, 0.85, 0.95, 0.92],
                         "min_eps": [None, None, None, None, 0.3, 0.1]})
    labels = pd.Series({i: 0 for i in range(1, 7)})
    robust, vulnerable = extremes(ranked(rows, "min_eps", "confident", labels), 3)
    assert robust == [2, 1, 3] and vulnerable == [6, 5, 4]
    # Without the labels (the activation maps' use, on minimal rows) every failure is taken as unfooled.
    minimal = rows.assign(operating_point="minimal", adv_pred=0)
    assert extremes(ranked(minimal, "min_eps"), 3)[0] == [4, 2, 1]


def test_the_overview_draws_every_runs_robustness_curve_side_by_side_from_its_table(run):
    import dataclasses
    import json

    from site_builder.render import unpacked

    other = dataclasses.replace(run, manifest={**run.manifest, "run": "other"})
    page = pages.index_page([run, other])
    spec = json.loads(str(page.context["curve"]))
    assert spec["facet"]["column"]["field"] == "run" and spec["facet"]["column"]["sort"] == ["tiny", "other"]
    columns = [unpacked(d["packed"]) for d in spec["datasets"].values()]
    rows = pd.DataFrame([dict(zip(c, v)) for c in columns if "run" in c for v in zip(*c.values())])
    label = pages.labels(run)
    for name in ("tiny", "other"):
        mine = rows[rows["run"] == name].set_index(["model", "eps"])["accuracy"]
        expected = run.robustness.assign(model=run.robustness["model"].map(label)).set_index(["model", "eps"])["accuracy"]
        assert len(mine) == len(expected) and np.allclose(mine.sort_index(), expected.sort_index(), atol=1e-4)
    assert "tiny: all N = 40 test images" in page.context["curve_counted"]


def test_the_detection_pages_cross_model_chart_is_every_sets_paired_delta_against_the_softmax(run):
    import json

    from site_builder.render import unpacked

    with alt.data_transformers.disable_max_rows():  # as the build renders it
        spec = json.loads(str(pages.detection_page(run).context["overview_spec"]))
    columns = [unpacked(d["packed"]) for d in spec["datasets"].values()]
    rows = pd.DataFrame([dict(zip(c, v)) for c in columns if "comparison" in c for v in zip(*c.values())])
    # Every adversarial set and the OOD images, one comparison more.
    det = run.detection[run.detection["reference"].isin(["adversarial", "ood"]) & (run.detection["score"] != "max_prob")
                        & run.detection["delta_vs_baseline"].notna() & (run.detection["n_adv"] > 0)]
    assert len(rows) == len(det) and set(rows["panel"]) == {"entropy", "mutual info", "variation ratio"}
    assert {"budget"} <= set(det["operating_point"])  # the fixed budgets are in it, not only the stopping points
    assert "OOD: rendered letters" in set(rows["comparison"])
    assert np.allclose(sorted(rows["value"]), sorted(det["delta_vs_baseline"].round(4)), atol=1e-4)
    for r in rows.itertuples():
        assert r.verdict == ("not distinguishable" if r.low <= 0 <= r.high else "holds" if r.low > 0 else "does not hold")
    assert set(rows["model"]) == set(pages.labels(run).values())


def test_the_detection_page_opens_with_its_answer_for_every_model(run):
    html = render_files([run])["runs/tiny/detection.html"].decode("utf-8")
    after_title = html.split("</h1>", 1)[1]
    first = re.search(r"<p[^>]*>(.*?)</p>", after_title, re.S).group(1)
    verdicts = {key: pages.detection_answer(run.detection, key)[0] for key in run.model_keys}
    summary = (f"{verdicts[run.model_keys[0]]}, for every model." if len(set(verdicts.values())) == 1 else
               "; ".join(f"{pages.labels(run)[k]}: {v}" for k, v in verdicts.items()) + ".")
    assert first == (f"<strong>Does uncertainty (MC dropout, or an ensemble's spread) flag attacks better than the "
                     f"softmax? {summary}</strong>")
    listed = after_title.split('<ul class="takeaway">', 1)[1].split("</ul>", 1)[0]
    assert after_title.index(first) < after_title.index('<p class="lead">')  # before the method
    for key, label in pages.labels(run).items():  # each model's N, range of Δ and counts, from the table
        sentence = pages.detection_answer(run.detection, key)[1]
        assert f"<li>{label}: {markupsafe.escape(sentence)}</li>" in listed
    mixed = pd.concat([_answer_rows([(0.03, 0.01, 0.05)]), _answer_rows([(-0.03, -0.05, -0.01)]).assign(model="n")])
    assert pages.detection_headline(mixed, ["m", "n"], {"m": "A", "n": "B"})["summary"] == "A: Yes; B: No."
    both = pd.concat([_answer_rows([(0.03, 0.01, 0.05)]), _answer_rows([(0.02, 0.01, 0.04)]).assign(model="n")])
    assert pages.detection_headline(both, ["m", "n"], {"m": "A", "n": "B"})["summary"] == "Yes, for every model."
