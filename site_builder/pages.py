"""Gather every page of the site as (path, template, context): a pure function of the loaded runs.

Pages select and format what the tables hold; the rows each chart plots come from chart_data.py,
tile positions from tiles.py and the per-image view's data files from image_data.py.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pandas as pd

from . import chart_data, charts, explorer_data, image_data, tiles
from .load import Run
from .render import chart_json

GALLERY_SIZE = 12  # most uncertain images shown per dropout rate
GOOD_BAD_PER_CLASS = 8  # most robust and most vulnerable images shown per class (one row each)


@dataclass(frozen=True)
class Page:
    path: str  # relative to the site root, with forward slashes
    template: str
    context: dict[str, Any]

    @property
    def root(self) -> str:
        """Relative prefix from this page back to the site root."""
        return "../" * self.path.count("/")


def run_dir(run: Run) -> str:
    return f"runs/{quote(run.name, safe='')}"


def run_summary(run: Run) -> dict[str, Any]:
    """The run as the header and the overview show it: its pages' URLs and a line per model."""
    d = run.manifest["dataset"]
    base = run_dir(run)
    return {"name": run.name, "uncertainty": f"{base}/uncertainty.html", "provenance": f"{base}/provenance.html",
            "attacks": f"{base}/attacks.html" if run.attack_names else "",
            "goodbad": f"{base}/good-bad.html" if "fgsm" in run.attack_names else "",
            "detection": f"{base}/detection.html" if run.attack_names else "",
            "explorer": f"{base}/explorer.html", "dataset": d["name"],
            "test_images": d["test_images"], "classes": len(d["class_names"]),
            "image_shape": "×".join(str(s) for s in d["image_shape"]),
            "models": [{"dropout_p": m["dropout_p"], "architecture": m["architecture"],
                        "accuracy": m["accuracy"]} for m in sorted(run.manifest["models"], key=lambda m: m["dropout_p"])]}


def _metrics(run: Run, p: float, condition: str = "clean"):  # noqa: ANN202
    return run.metrics[(run.metrics["dropout_p"] == p) & (run.metrics["condition"] == condition)]


def uncertainty_page(run: Run) -> Page:
    sections = []
    images = run.images.set_index("image_id")
    for p in run.dropout_ps:
        points = chart_data.image_points(run.uncertainty, run.class_names, p)
        calibration = run.calibration[(run.calibration["dropout_p"] == p) & (run.calibration["condition"] == "clean")]
        metrics = _metrics(run, p)
        overall = metrics[metrics["class_name"].isna()].iloc[0]
        uncertain = points.sort_values(["entropy", "image_id"], ascending=[False, True]).head(GALLERY_SIZE)
        sections.append({
            "dropout_p": p,
            "anchor": f"p{p:g}",
            "accuracy": run.model(p)["accuracy"],
            "overall": overall.to_dict(),
            "per_class": metrics[metrics["class_name"].notna()].to_dict("records"),
            "spec": chart_json(charts.uncertainty_dashboard(points, calibration, run.class_names)),
            "gallery": [{"image_id": int(r.image_id), "class_name": r.class_name, "pred_name": r.pred_name,
                         "entropy": float(r.entropy), "tile": tiles.image_tile(run, images.loc[int(r.image_id)])}
                        for r in uncertain.itertuples()],
        })
    return Page(f"{run_dir(run)}/uncertainty.html", "uncertainty.html",
                {"title": f"{run.name}: uncertainty", "run": run_summary(run), "sections": sections,
                 "passes": run.manifest["config"]["uncertainty"]["passes"],
                 "bins": run.manifest["config"]["uncertainty"]["bins"],
                 "summary_spec": chart_json(charts.accuracy_by_dropout(run.metrics))})


def provenance_page(run: Run) -> Page:
    m = run.manifest
    return Page(f"{run_dir(run)}/provenance.html", "provenance.html", {
        "title": f"{run.name}: provenance", "run": run_summary(run), "config": m["config"],
        "models": sorted(m["models"], key=lambda x: x["dropout_p"]), "versions": sorted(m["versions"].items()),
        "timings": sorted(m["timings"].items()), "tables": sorted(m["tables"].items()),
        "dataset": m["dataset"], "device": m["device"], "schema_version": m["schema_version"]})


def attack_summary(run: Run, p: float) -> list[dict[str, Any]]:
    """Per attack and operating point, its attack_summary row (populations named there)."""
    rows = run.attack_summary[run.attack_summary["dropout_p"] == p].set_index(["attack", "operating_point"])
    return [{"attack": a, "operating_point": point, **rows.loc[(a, point)].to_dict()}
            for a, point in run.attack_points]


def budgets(run: Run) -> dict[str, str]:
    """Each attack's budget as the per-image view names it for a failure ("not fooled within ...")."""
    resolved = run.manifest["attacks"]["resolved"]
    named = {"fgsm": lambda c: f"ε ≤ {c['search_max']:.4g}", "lbfgs": lambda c: f"c ≤ {c['c_max']:g}",
             "iaa": lambda c: f"D ≤ {c['d_max']:g}", "eot_pgd": lambda c: f"ε ≤ {max(c['eps']):.4g}"}
    return {a: named[a](resolved[a]) if a in named else "its budget" for a in run.attack_names}


def attacks_page(run: Run) -> Page:
    sections = []
    for p in run.dropout_ps:
        points = chart_data.attack_points(run.attacks, run.uncertainty, run.images, run.class_names, p)
        rates = chart_data.success_points(run.success_rates, p)
        summary = attack_summary(run, p)
        minimal = [a for a in summary if a["operating_point"] == "minimal"]
        populations = ("clean-correct images attacked (N): "
                       + ", ".join(f"{a['attack']} {a['images']}" for a in minimal) + "; successful minimal: "
                       + ", ".join(f"{a['attack']} {a['successes']}" for a in minimal)) if minimal else ""
        sections.append({"dropout_p": p, "anchor": f"p{p:g}", "summary": summary,
                         "spec": chart_json(charts.attack_dashboard(points, rates, run.class_names, run.attack_names,
                                                                    populations))})
    curve, fgsm_rows = None, []
    if "fgsm" in run.attack_names:
        robustness = chart_data.robustness_points(run.robustness)
        everyone = f"all N = {len(run.images)} test images; those wrong before the attack count as wrong"
        curve, fgsm_rows = chart_json(charts.robustness_curve(robustness, everyone)), robustness.to_dict("records")
    return Page(f"{run_dir(run)}/attacks.html", "attacks.html", {
        "title": f"{run.name}: attacks", "run": run_summary(run), "sections": sections, "curve_spec": curve,
        "fgsm_rows": fgsm_rows, "params": run.manifest["attacks"]["resolved"], "subsets": subsets(run)})


def subsets(run: Run) -> list[dict[str, Any]]:
    """The attacks run on a subset of the test images (too costly for all), with how many they attacked."""
    out = []
    for a in run.attack_names:
        limit = int(run.manifest["attacks"]["resolved"][a].get("max_images", 0) or 0)
        if limit and limit < len(run.images):
            out.append({"attack": a, "max_images": limit})
    return out


MC_SCORES = ("entropy", "mutual_info", "variation_ratio")


def _span(values: pd.Series) -> str:
    return f"{values.min():.2f}" if values.min() == values.max() else f"{values.min():.2f}–{values.max():.2f}"


def detection_takeaway(detection: pd.DataFrame, p: float) -> list[str]:
    """Sentences a reader should take from one model's detection rows, written from the numbers:
    the best MC-dropout score against the max-probability baseline at each operating point, the
    attacks against their noise controls, and the adaptive attacker at its largest budget."""
    rows = detection[(detection["dropout_p"] == p) & (detection["n_adv"] > 0)]
    mc = rows[rows["score"].isin(MC_SCORES)]
    out = []
    for point in ("minimal", "confident"):
        adv = rows[(rows["attack"] != "noise") & (rows["operating_point"] == point)]
        if adv.empty:
            continue
        scored = adv[adv["score"].isin(MC_SCORES)]
        best = scored.loc[scored.groupby("attack")["auroc"].idxmax()].set_index("attack")
        plain = adv[adv["score"] == "max_prob"].set_index("attack").reindex(best.index)
        above = int((best["auroc_low"] > plain["auroc_high"]).sum())  # 95% intervals apart
        below = int((best["auroc_high"] < plain["auroc_low"]).sum())
        out.append(f"{point.capitalize()} adversarials: the best MC-dropout score reaches AUROC "
                   f"{_span(best['auroc'])} across attacks, the plain max-probability baseline "
                   f"{_span(plain['auroc'])}; the best MC score's 95% interval lies above the baseline's for "
                   f"{above} of {len(best)} attacks and below it for {below}.")
    points = mc[mc["operating_point"].isin(["minimal", "confident"])]
    noise = points[points["attack"] == "noise"].groupby(["noise_of", "operating_point"])["auroc"].max()
    adv = points[points["attack"] != "noise"].groupby(["attack", "operating_point"])["auroc"].max()
    if not noise.empty:
        above = int((adv.reindex(noise.index).to_numpy() > noise.to_numpy()).sum())
        out.append(f"Noise of the same size as the minimal and confident adversarials is flagged with AUROC "
                   f"{_span(noise)} (best MC score; 0.5 = chance), the adversarials themselves {_span(adv)}: the "
                   f"attack is flagged more than its noise in {above} of {len(noise)} cases.")
    adaptive = mc[(mc["attack"] == "eot_pgd") & (mc["operating_point"] == "budget")]
    if not adaptive.empty:
        top = adaptive["eps"].max()
        at = adaptive[adaptive["eps"] == top]["auroc"].max()
        control = mc[(mc["noise_of"] == "eot_pgd") & (mc["eps"] == top)]["auroc"].max()
        out.append(f"The adaptive attacker (EOT-PGD, which averages its gradient over dropout masks and keeps the "
                   f"entropy low) at ε = {top:g} leaves the best MC-dropout score at AUROC {at:.2f}, against "
                   f"{control:.2f} for noise of the same size.")
    return out


def _lines(text: str, width: int = 62) -> list[str]:
    return textwrap.wrap(text, width)


def figure_sentences(points: pd.DataFrame, roc: pd.DataFrame, eps: pd.DataFrame, risk: pd.DataFrame,
                     default: str) -> dict[str, str]:
    """One sentence per figure of the detection dashboard, written from the rows it plots (the
    default pick where a figure shows one set of positives)."""
    confident = points[(points["kind"] == "adversarial") & points["variant"].str.endswith(" confident")]
    by_score = confident.groupby("score")["auroc"].mean()
    out = {"auroc": f"Take-away: on confident adversarials, mean AUROC over attacks is {by_score.get('entropy', float('nan')):.2f} "
                    f"for entropy, {by_score.get('mutual_info', float('nan')):.2f} for mutual information and "
                    f"{by_score.get('max_prob', float('nan')):.2f} for the max-probability baseline."}
    picked = roc[roc["variant"] == default]
    at5 = picked[picked["fpr"] <= 0.05].groupby("score")["tpr"].max()
    out["roc"] = (f"Take-away: flagging at most 5% of clean images, {default} is caught {at5.get('entropy', 0):.0%} of the "
                  f"time by entropy and {at5.get('max_prob', 0):.0%} by max_prob.")
    ent = eps[(eps["score"] == "entropy") & (eps["eps"] > 0)].pivot_table(index="eps", columns="image", values="mean")
    above = int((ent.get("FGSM adversarial", pd.Series(dtype=float)) > ent.get("noise control", pd.Series(dtype=float))).sum())
    out["eps"] = (f"Take-away: the successful adversarials' mean entropy is above that of noise of the same size at "
                  f"{above} of {len(ent)} budgets.")
    aurc = risk.drop_duplicates(["variant", "score"]).set_index(["variant", "score"])["aurc"]
    clean, attacked = aurc.get(("clean", "entropy"), float("nan")), aurc.get((default, "entropy"), float("nan"))
    out["risk"] = (f"Take-away: keeping the most certain images first, the area under the curve (AURC, entropy) is "
                   f"{clean:.3f} on clean images and {attacked:.3f} under {default}: uncertainty cannot sort out "
                   f"the images an attack fooled." if attacked > 5 * clean else
                   f"Take-away: AURC (entropy) is {clean:.3f} on clean images and {attacked:.3f} under {default}.")
    return out


def detection_page(run: Run) -> Page:
    """Does uncertainty flag the attack? Detection with intervals, ROC, uncertainty against epsilon
    beside the noise control, selective prediction."""
    sections = []
    kappa = run.manifest["attacks"]["resolved"]["kappa"]
    for p in run.dropout_ps:
        points = chart_data.detection_points(run.detection, p)
        if points.empty:
            continue
        n_clean = int(points["n_clean"].iloc[0])
        default = next((v for v in points["variant"] if v.endswith(" confident")), points["variant"].iloc[0])
        roc, eps = chart_data.roc_curve_points(run.roc, p), chart_data.eps_curve_points(run.detection, p)
        risk = chart_data.risk_points(run.risk_coverage, p)
        said = figure_sentences(points, roc, eps, risk, default)
        populations = {
            "auroc": [f"negatives: N = {n_clean} clean-correct clean images;",
                      "positives: successful adversarials (or their noise controls),",
                      "N per row in the tooltip. Click a row to pick it.", *_lines(said["auroc"])],
            "roc": [f"the picked positives against the N = {n_clean}", "clean-correct clean images",
                    *_lines(said["roc"])],
            "eps": [f"successful FGSM adversarials at each ε and their noise controls (N per point in the tooltip); "
                    f"ε = 0: the N = {n_clean} clean-correct images", said["eps"]],
            "risk": [f"clean: all N = {len(run.images)} test images; under attack:",
                     "the attacked images with their adversarial", *_lines(said["risk"])]}
        spec = charts.detection_dashboard(points, roc, eps, risk, default, populations)
        table = points.pivot_table(index=["variant", "kind"], columns="score", values=["auroc", "auroc_low", "auroc_high"],
                                   sort=False)
        rows = []
        for (v, kind), r in table.iterrows():
            n_adv = int(points[points["variant"] == v]["n_adv"].iloc[0])
            rows.append({"variant": v, "kind": kind, "n_adv": n_adv,
                         "scores": [{"auroc": r[("auroc", s)], "low": r[("auroc_low", s)], "high": r[("auroc_high", s)]}
                                    if ("auroc", s) in r.index else None for s in charts.SCORE_NAMES]})
        aurc = run.risk_coverage[run.risk_coverage["dropout_p"] == p].drop_duplicates(["condition", "score"])
        sections.append({"dropout_p": p, "anchor": f"p{p:g}", "n_clean": n_clean, "rows": rows,
                         "full": points.to_dict("records"), "takeaway": detection_takeaway(run.detection, p),
                         "aurc": aurc.pivot_table(index="condition", columns="score", values="aurc", sort=False)
                         .reset_index().to_dict("records"),
                         "spec": chart_json(spec)})
    return Page(f"{run_dir(run)}/detection.html", "detection.html", {
        "title": f"{run.name}: uncertainty under attack", "run": run_summary(run), "sections": sections,
        "scores": list(charts.SCORE_NAMES), "kappa": kappa, "subsets": subsets(run),
        "resamples": run.manifest["config"]["detection"]["resamples"]})


def good_bad_page(run: Run) -> Page:
    """Per model, one row per class: its most robust ("good") and most vulnerable ("bad") clean-correct
    test images by FGSM's smallest flipping epsilon (never flipped = most robust), as thumbnails."""
    images = run.images.set_index("image_id")
    names = run.class_names
    thumb = thumb_size(int(run.manifest["tiles"]["tile_width"]))
    search_max = float(run.manifest["attacks"]["resolved"]["fgsm"]["search_max"])

    def card(r: Any, side: str) -> dict[str, Any]:
        image_id = int(r.image_id)
        flipped = r.min_eps == r.min_eps
        return {"image_id": image_id, "side": side, "tile": tiles.image_tile(run, images.loc[image_id]),
                "zoom": thumb / int(run.manifest["tiles"]["tile_width"]),
                "label": f"ε = {r.min_eps:.3f}" if flipped else "never",
                "title": f"#{image_id}: FGSM flips it at ε = {r.min_eps:.4f}" if flipped else
                         f"#{image_id}: FGSM never flipped it up to ε = {search_max:g} (true class at "
                         f"{r.adv_prob:.3f} there)",
                "href": f"image.html#id={image_id}"}

    sections = []
    for p in run.dropout_ps:
        fg = run.attacks[(run.attacks["dropout_p"] == p) & (run.attacks["attack"] == "fgsm")
                         & (run.attacks["operating_point"] == "minimal")]
        wrong = fg.loc[~fg["clean_correct"], "image_id"].map(images["label"]).value_counts().reindex(
            range(len(names)), fill_value=0)
        # Only images the model got right were attacked. Never flipped up to search_max ranks above any
        # flip, and among those a higher true-class probability at search_max (adv_prob) is more robust.
        fg = fg[fg["clean_correct"]]
        fg = fg.assign(label=fg["image_id"].map(images["label"]), score=fg["min_eps"].fillna(float("inf")),
                       margin=fg["adv_prob"].where(fg["min_eps"].isna(), 0.0))
        classes = []
        for label, name in enumerate(names):
            rows = fg[fg["label"] == label]
            if rows.empty:
                continue
            k = min(GOOD_BAD_PER_CLASS, len(rows) // 2)
            robust = rows.sort_values(["score", "margin", "image_id"], ascending=[False, False, True],
                                      kind="stable").head(k)
            rest = rows[~rows["image_id"].isin(robust["image_id"])]  # ties must not put an image on both sides
            fragile = rest.sort_values(["score", "image_id"], kind="stable").head(k)
            classes.append({"class_name": name, "wrong_before": int(wrong[label]), "attacked": len(rows),
                            "robust": [card(r, "robust") for r in robust.itertuples()],
                            "vulnerable": [card(r, "vulnerable") for r in fragile.itertuples()]})
        sections.append({"dropout_p": p, "anchor": f"p{p:g}", "classes": classes})
    return Page(f"{run_dir(run)}/good-bad.html", "good_bad.html", {
        "title": f"{run.name}: good & bad images", "run": run_summary(run), "sections": sections,
        "per_class": GOOD_BAD_PER_CLASS, "search_max": search_max})


def thumb_size(width: int) -> int:
    """Thumbnail width in the grids: twice a small image (28-px digits: 56 px), at most 64 px."""
    return int(min(2 * width, 64))


def explorer_page(run: Run) -> Page:
    """The grid of every test image and the feature map; their data is data/explorer.js."""
    layout = tiles.layout(run)
    index = {"sheets": layout["original"], "cols": layout["cols"], "per_sheet": layout["per_sheet"],
             "width": layout["width"], "height": layout["height"], "thumb": thumb_size(layout["width"])}
    return Page(f"{run_dir(run)}/explorer.html", "explorer.html", {
        "title": f"{run.name}: explorer", "run": run_summary(run), "index": index, "attacks": run.attack_names,
        "images": int(run.images["image_id"].nunique())})


def image_page(run: Run, chunks: list[dict[str, Any]]) -> Page:
    """The per-image view: one page, the image chosen by its URL's #id=N, its data from ``chunks``."""
    conditions = run.conditions
    adversarial = [c for c in conditions if not c.startswith("noise-")]  # those with class probabilities
    ids = run.images["image_id"].tolist()  # images-table order: an id's position is its tile's
    return Page(f"{run_dir(run)}/image.html", "image.html", {
        "title": f"{run.name}: image", "run": run_summary(run),
        "index": {"chunks": chunks, "ids": ids, "labels": run.images["label"].astype(int).tolist(), "conditions": conditions, "attacks": run.attack_names,
                  "attack_points": run.attack_points, "kappa": run.manifest["attacks"]["resolved"]["kappa"],
                  "noise_norms": run.manifest["attacks"]["noise"],
                  "budgets": budgets(run),
                  "class_names": run.class_names, "dropout_ps": run.dropout_ps, "tiles": tiles.layout(run),
                  "fields": {"conditions": image_data.CONDITION_FIELDS, "attacks": image_data.ATTACK_FIELDS,
                             "activations": image_data.ACTIVATION_FIELDS}},
        "probs_spec": chart_json(charts.image_probs_chart(run.class_names, adversarial)),
        "pass_histogram_spec": chart_json(charts.pass_histogram_chart(
            adversarial, run.manifest["config"]["uncertainty"]["passes"]))})


def gather_pages(runs: list[Run]) -> tuple[list[Page], dict[str, Any]]:
    """Every page of the site in a stable order, and its data files (path -> (callback, records)):
    the per-image view's chunks and the explorer's data."""
    pages = [Page("index.html", "index.html", {"title": "robustviz", "runs": [run_summary(r) for r in runs]})]
    data: dict[str, Any] = {}
    for run in runs:
        pages += [uncertainty_page(run), provenance_page(run), explorer_page(run)]
        if run.attack_names:
            pages += [attacks_page(run), detection_page(run)]
        if "fgsm" in run.attack_names:
            pages.append(good_bad_page(run))
        chunks, files = image_data.image_chunks(run, run_dir(run))
        data.update({path: ("robustvizImageChunk", records) for path, records in files.items()})
        data[f"{run_dir(run)}/data/explorer.js"] = ("robustvizExplorerData", explorer_data.explorer_data(run))
        pages.append(image_page(run, chunks))
    return pages, data
