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

from compute.config import to_plain
from compute.ranking import extremes, ranked
from compute.contract import MC_SCORES, NOISE_PREFIX, BUDGET, CLEAN, CONFIDENT, MINIMAL, PALETTE, condition_name

from . import chart_data, charts, explorer_data, image_data, tiles
from .load import Run
from .render import chart_json

GALLERY_SIZE = 12  # most uncertain images shown per model
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
            "goodbad": f"{base}/good-bad.html" if run.ranking else "",
            "detection": f"{base}/detection.html" if run.attack_names else "",
            "explorer": f"{base}/explorer.html", "dataset": d["name"],
            "n_test_images": d["n_test_images"], "n_classes": len(d["class_names"]),
            "image_shape": "×".join(str(s) for s in d["image_shape"]),
            "models": [{"key": m["key"], "label": m["label"], "architecture": m["architecture"],
                        "accuracy": m["accuracy"]} for m in run.models]}


def model_section(run: Run, key: str) -> dict[str, Any]:
    """What every per-model section of a page starts from: the model's key (its anchor), label and heading."""
    label = run.model(key)["label"]
    return {"key": key, "anchor": key, "label": label, "heading": label[:1].upper() + label[1:]}


def labels(run: Run) -> dict[str, str]:
    """Model key -> label, in run order."""
    return {m["key"]: m["label"] for m in run.models}


def attack_labels(run: Run) -> dict[str, str]:
    """Each attack of the run with its label (from its card): how every page names it."""
    return {a: run.cards[a]["label"] for a in run.attack_names}


def attack_colours(run: Run) -> dict[str, str]:
    """Each attack of the run, in order, by its label, with its colour (from its card)."""
    return {run.cards[a]["label"]: run.cards[a]["colour"] for a in run.attack_names}


def condition_colours(run: Run, conditions: list[str]) -> dict[str, str]:
    """A colour per condition: clean grey; an attack's minimal adversarial its colour, the confident one its tint."""
    out = {}
    for c in conditions:
        if c == CLEAN:
            out[c] = PALETTE["clean"]
        for a in run.attack_names:
            if c == condition_name(a, MINIMAL):
                out[c] = run.cards[a]["colour"]
            elif c == condition_name(a, CONFIDENT):
                out[c] = run.cards[a]["confident_colour"]
    return out


def _metrics(run: Run, key: str, condition: str = CLEAN):  # noqa: ANN202
    return run.metrics[(run.metrics["model"] == key) & (run.metrics["condition"] == condition)]


def uncertainty_page(run: Run) -> Page:
    sections = []
    images = run.images.set_index("image_id")
    for key in run.model_keys:
        points = chart_data.image_points(run.uncertainty, run.class_names, key)
        calibration = run.calibration[(run.calibration["model"] == key) & (run.calibration["condition"] == CLEAN)]
        metrics = _metrics(run, key)
        overall = metrics[metrics["class_name"].isna()].iloc[0]
        uncertain = points.sort_values(["entropy", "image_id"], ascending=[False, True]).head(GALLERY_SIZE)
        sections.append({
            **model_section(run, key),
            "accuracy": run.model(key)["accuracy"],
            "overall": overall.to_dict(),
            "per_class": metrics[metrics["class_name"].notna()].to_dict("records"),
            "spec": chart_json(charts.uncertainty_dashboard(points, calibration, run.class_names)),
            "gallery": [{"image_id": int(r.image_id), "class_name": r.class_name, "pred_name": r.pred_name,
                         "entropy": float(r.entropy), "tile": tiles.image_tile(run, images.loc[int(r.image_id)])}
                        for r in uncertain.itertuples()],
        })
    return Page(f"{run_dir(run)}/uncertainty.html", "uncertainty.html",
                {"title": f"{run.name}: uncertainty", "run": run_summary(run), "sections": sections,
                 "passes": run.config.uncertainty.passes, "bins": run.config.uncertainty.bins,
                 "summary_spec": chart_json(charts.accuracy_by_model(run.metrics, labels(run)))})


def provenance_page(run: Run) -> Page:
    m = run.manifest
    return Page(f"{run_dir(run)}/provenance.html", "provenance.html", {
        "title": f"{run.name}: provenance", "run": run_summary(run), "config": m["config"],
        "models": run.models, "versions": sorted(m["versions"].items()),
        "timings": sorted(m["timings"].items()), "tables": sorted(m["tables"].items()),
        "dataset": m["dataset"], "device": m["device"], "schema_version": m["schema_version"]})


def attack_summary(run: Run, key: str) -> list[dict[str, Any]]:
    """Per attack and operating point, its attack_summary row (populations named there)."""
    rows = run.attack_summary[run.attack_summary["model"] == key].set_index(["attack", "operating_point"])
    return [{"attack": a, "label": run.cards[a]["label"], "operating_point": point, **rows.loc[(a, point)].to_dict()}
            for a, point in run.attack_points]


def limit_captions(run: Run) -> dict[str, str]:
    """Each attack's budget as the per-image view names it for a failure ("not fooled within ..."),
    from its card."""
    return {a: run.cards[a]["limit_caption"] for a in run.attack_names}


def attacks_page(run: Run) -> Page:
    sections = []
    for key in run.model_keys:
        points = chart_data.attack_points(run.attacks, run.uncertainty, run.images, run.class_names, key,
                                          attack_labels(run))
        rates = chart_data.success_points(run.success_rates, key, attack_labels(run))
        summary = attack_summary(run, key)
        minimal = [a for a in summary if a["operating_point"] == MINIMAL]
        populations = ("clean-correct images attacked (N): "
                       + ", ".join(f"{a['label']} {a['n_attacked']}" for a in minimal) + "; successful minimal: "
                       + ", ".join(f"{a['label']} {a['n_success']}" for a in minimal)) if minimal else ""
        sections.append({**model_section(run, key), "summary": summary,
                         "spec": chart_json(charts.attack_dashboard(points, rates, run.class_names, attack_colours(run),
                                                                    populations))})
    curve, curve_rows, ranking = None, [], run.ranking
    if ranking and not run.robustness.empty:
        robustness = chart_data.robustness_points(run.robustness, labels(run))
        everyone = f"all N = {len(run.images)} test images; those wrong before the attack count as wrong"
        curve = chart_json(charts.robustness_curve(robustness, run.cards[ranking]["label"], everyone))
        curve_rows = robustness.to_dict("records")
    return Page(f"{run_dir(run)}/attacks.html", "attacks.html", {
        "title": f"{run.name}: attacks", "run": run_summary(run), "sections": sections, "curve_spec": curve,
        "curve_rows": curve_rows, "curve_attack": run.cards[ranking]["label"] if ranking else "",
        "cards": [run.cards[a] for a in run.attack_names],
        "kappa": run.config.attacks.kappa, "params": to_plain(run.config.attacks), "subsets": subsets(run)})


def subsets(run: Run) -> list[dict[str, Any]]:
    """The attacks run on a subset of the test images (too costly for all), with how many they attacked."""
    out = []
    for a in run.attack_names:
        limit = int(run.cards[a]["subset"])
        if limit and limit < len(run.images):
            out.append({"attack": a, "label": run.cards[a]["label"], "n_images": limit})
    return out




def _span(values: pd.Series) -> str:
    return f"{values.min():.2f}" if values.min() == values.max() else f"{values.min():.2f}–{values.max():.2f}"


def detection_takeaway(detection: pd.DataFrame, key: str, cards: dict[str, dict[str, Any]]) -> list[str]:
    """Sentences a reader should take from one model's detection rows, written from the numbers:
    the best MC-dropout score against the max-probability baseline at each operating point, the
    attacks against their noise controls, and each adaptive attacker (``cards``: the run's attack
    cards) at its largest budget."""
    rows = detection[(detection["model"] == key) & (detection["n_adv"] > 0)]
    mc = rows[rows["score"].isin(MC_SCORES)]
    out = []
    for point in (MINIMAL, CONFIDENT):
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
    points = mc[mc["operating_point"].isin([MINIMAL, CONFIDENT])]
    noise = points[points["attack"] == "noise"].groupby(["noise_of", "operating_point"])["auroc"].max()
    adv = points[points["attack"] != "noise"].groupby(["attack", "operating_point"])["auroc"].max()
    if not noise.empty:
        above = int((adv.reindex(noise.index).to_numpy() > noise.to_numpy()).sum())
        out.append(f"Noise of the same size as the minimal and confident adversarials is flagged with AUROC "
                   f"{_span(noise)} (best MC score; 0.5 = chance), the adversarials themselves {_span(adv)}: the "
                   f"attack is flagged more than its noise in {above} of {len(noise)} cases.")
    for attack in (a for a, card in cards.items() if card["adaptive"]):
        adaptive = mc[(mc["attack"] == attack) & (mc["operating_point"] == BUDGET)]
        if adaptive.empty:
            continue
        top = adaptive["eps"].max()
        at = adaptive[adaptive["eps"] == top]["auroc"].max()
        control = mc[(mc["noise_of"] == attack) & (mc["eps"] == top)]["auroc"].max()
        out.append(f"The adaptive attacker ({cards[attack]['label']}: {cards[attack]['description']}) at ε = {top:g} "
                   f"leaves the best MC-dropout score at AUROC {at:.2f}, against {control:.2f} for noise of the same "
                   f"size.")
    return out


def _lines(text: str, width: int = 62) -> list[str]:
    return textwrap.wrap(text, width)


def figure_sentences(points: pd.DataFrame, roc: pd.DataFrame, eps: pd.DataFrame, risk: pd.DataFrame,
                     default: str, eps_label: str) -> dict[str, str]:
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
    above = int((ent.get(f"{eps_label} adversarial", pd.Series(dtype=float))
                 > ent.get("noise control", pd.Series(dtype=float))).sum())
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
    kappa = run.config.attacks.kappa
    ranking = run.ranking
    for key in run.model_keys:
        points = chart_data.detection_points(run.detection, key, attack_labels(run))
        if points.empty:
            continue
        n_clean = int(points["n_clean"].iloc[0])
        default = next((v for v in points["variant"] if v.endswith(" confident")), points["variant"].iloc[0])
        eps_label = run.cards[ranking]["label"] if ranking else ""
        roc = chart_data.roc_curve_points(run.roc, key, attack_labels(run))
        eps = chart_data.eps_curve_points(run.detection, key, ranking or "", eps_label)
        risk = chart_data.risk_points(run.risk_coverage, key, attack_labels(run))
        said = figure_sentences(points, roc, eps, risk, default, eps_label)
        populations = {
            "auroc": [f"negatives: N = {n_clean} clean-correct clean images;",
                      "positives: successful adversarials (or their noise controls),",
                      "N per row in the tooltip. Click a row to pick it.", *_lines(said["auroc"])],
            "roc": [f"the picked positives against the N = {n_clean}", "clean-correct clean images",
                    *_lines(said["roc"])],
            "eps": [f"successful {eps_label} adversarials at each ε and their noise controls (N per point in the tooltip); "
                    f"ε = 0: the N = {n_clean} clean-correct images", said["eps"]],
            "risk": [f"clean: all N = {len(run.images)} test images; under attack:",
                     "the attacked images with their adversarial", *_lines(said["risk"])]}
        spec = charts.detection_dashboard(points, roc, eps, risk, default, populations, eps_label)
        table = points.pivot_table(index=["variant", "kind"], columns="score", values=["auroc", "auroc_low", "auroc_high"],
                                   sort=False)
        rows = []
        for (v, kind), r in table.iterrows():
            n_adv = int(points[points["variant"] == v]["n_adv"].iloc[0])
            rows.append({"variant": v, "kind": kind, "n_adv": n_adv,
                         "scores": [{"auroc": r[("auroc", s)], "low": r[("auroc_low", s)], "high": r[("auroc_high", s)]}
                                    if ("auroc", s) in r.index else None for s in charts.SCORE_NAMES]})
        aurc = run.risk_coverage[run.risk_coverage["model"] == key].drop_duplicates(["condition", "score"])
        sections.append({**model_section(run, key), "n_clean": n_clean, "rows": rows,
                         "full": points.to_dict("records"), "takeaway": detection_takeaway(run.detection, key, run.cards),
                         "aurc": aurc.pivot_table(index="condition", columns="score", values="aurc", sort=False)
                         .reset_index().to_dict("records"),
                         "spec": chart_json(spec)})
    return Page(f"{run_dir(run)}/detection.html", "detection.html", {
        "title": f"{run.name}: uncertainty under attack", "run": run_summary(run), "sections": sections,
        "scores": list(charts.SCORE_NAMES), "kappa": kappa, "subsets": subsets(run),
        "adaptive": [run.cards[a] for a in run.attack_names if run.cards[a]["adaptive"]],
        "budget_attacks": " and ".join(run.cards[a]["label"] for a in run.attack_names
                                       if run.attacks[(run.attacks["attack"] == a)
                                                      & (run.attacks["operating_point"] == BUDGET)].size) or "no attack",
        "resamples": run.config.detection.resamples})


def good_bad_page(run: Run) -> Page:
    """Per model, one row per class: its most robust ("good") and most vulnerable ("bad") clean-correct
    test images by the ranking attack (``attacks.ranking``: its card's ranking column on its minimal
    adversarials, e.g. FGSM's smallest flipping epsilon; never fooled = most robust), as thumbnails."""
    images = run.images.set_index("image_id")
    names = run.class_names
    thumb = thumb_size(int(run.manifest["tiles"]["tile_width"]))
    ranking = run.ranking
    assert ranking is not None, "good & bad needs a ranking attack"
    rank = run.cards[ranking]
    column, symbol = rank["ranking_column"], rank["ranking_symbol"]

    def card(r: Any, side: str) -> dict[str, Any]:
        image_id = int(r.image_id)
        value = float(getattr(r, column)) if r.success else float("nan")
        return {"image_id": image_id, "side": side, "tile": tiles.image_tile(run, images.loc[image_id]),
                "zoom": thumb / int(run.manifest["tiles"]["tile_width"]),
                "label": f"{symbol} = {value:.3f}" if r.success else "never",
                "title": f"#{image_id}: {rank['label']} fools it at {symbol} = {value:.4f}" if r.success else
                         f"#{image_id}: {rank['label']} never fooled it within {rank['limit_caption']} (true class "
                         f"at {r.adv_prob:.3f} there)",
                "href": f"image.html#id={image_id}"}

    sections = []
    for key in run.model_keys:
        fg = run.attacks[(run.attacks["model"] == key) & (run.attacks["attack"] == ranking)
                         & (run.attacks["operating_point"] == MINIMAL)]
        wrong = fg.loc[~fg["clean_correct"], "image_id"].map(images["label"]).value_counts().reindex(
            range(len(names)), fill_value=0)
        # Only images the model got right were attacked; compute/ranking.py orders them (one ranking for
        # this page and the activation maps).
        scored = ranked(fg, column)
        scored = scored.assign(label=scored["image_id"].map(images["label"]))
        by_id = fg.set_index("image_id")
        classes = []
        for label, name in enumerate(names):
            rows = scored[scored["label"] == label]
            if rows.empty:
                continue
            robust, fragile = extremes(rows, min(GOOD_BAD_PER_CLASS, len(rows) // 2))
            robust, fragile = by_id.loc[robust].reset_index(), by_id.loc[fragile].reset_index()
            classes.append({"class_name": name, "n_wrong_before": int(wrong[label]), "n_attacked": len(rows),
                            "robust": [card(r, "robust") for r in robust.itertuples()],
                            "vulnerable": [card(r, "vulnerable") for r in fragile.itertuples()]})
        sections.append({**model_section(run, key), "classes": classes})
    return Page(f"{run_dir(run)}/good-bad.html", "good_bad.html", {
        "title": f"{run.name}: good & bad images", "run": run_summary(run), "sections": sections,
        "per_class": GOOD_BAD_PER_CLASS, "ranking": rank})


def thumb_size(width: int) -> int:
    """Thumbnail width in the grids: twice a small image (28-px digits: 56 px), at most 64 px."""
    return int(min(2 * width, 64))


def explorer_page(run: Run) -> Page:
    """The grid of every test image and the feature map; their data is data/explorer.js."""
    layout = tiles.layout(run)
    index = {"sheets": layout["original"], "cols": layout["cols"], "per_sheet": layout["per_sheet"],
             "width": layout["width"], "height": layout["height"], "thumb": thumb_size(layout["width"])}
    return Page(f"{run_dir(run)}/explorer.html", "explorer.html", {
        "title": f"{run.name}: explorer", "run": run_summary(run), "index": index,
        "attacks": [run.cards[a]["label"] for a in run.attack_names],
        "n_images": int(run.images["image_id"].nunique())})


def image_page(run: Run, chunks: list[dict[str, Any]]) -> Page:
    """The per-image view: one page, the image chosen by its URL's #id=N, its data from ``chunks``."""
    conditions = run.conditions
    adversarial = [c for c in conditions if not c.startswith(NOISE_PREFIX)]  # those with class probabilities
    ids = run.images["image_id"].tolist()  # images-table order: an id's position is its tile's
    return Page(f"{run_dir(run)}/image.html", "image.html", {
        "title": f"{run.name}: image", "run": run_summary(run),
        "index": {"chunks": chunks, "ids": ids, "labels": run.images["label"].astype(int).tolist(), "conditions": conditions, "attacks": run.attack_names,
                  "attack_points": run.attack_points, "kappa": run.config.attacks.kappa,
                  "cards": run.cards, "limit_captions": limit_captions(run),
                  "class_names": run.class_names, "models": [model_section(run, k) for k in run.model_keys],
                  "tiles": tiles.layout(run),
                  "fields": {"conditions": image_data.CONDITION_FIELDS, "attacks": image_data.ATTACK_FIELDS,
                             "activations": image_data.ACTIVATION_FIELDS}},
        "probs_spec": chart_json(charts.image_probs_chart(run.class_names, condition_colours(run, adversarial))),
        "pass_histogram_spec": chart_json(charts.pass_histogram_chart(
            adversarial, run.config.uncertainty.passes))})


def gather_pages(runs: list[Run]) -> tuple[list[Page], dict[str, Any]]:
    """Every page of the site in a stable order, and its data files (path -> (callback, records)):
    the per-image view's chunks and the explorer's data."""
    pages = [Page("index.html", "index.html", {"title": "robustviz", "runs": [run_summary(r) for r in runs]})]
    data: dict[str, Any] = {}
    for run in runs:
        pages += [uncertainty_page(run), provenance_page(run), explorer_page(run)]
        if run.attack_names:
            pages += [attacks_page(run), detection_page(run)]
        if run.ranking:
            pages.append(good_bad_page(run))
        chunks, files = image_data.image_chunks(run, run_dir(run))
        data.update({path: ("robustvizImageChunk", records) for path, records in files.items()})
        data[f"{run_dir(run)}/data/explorer.js"] = ("robustvizExplorerData", explorer_data.explorer_data(run))
        pages.append(image_page(run, chunks))
    return pages, data
