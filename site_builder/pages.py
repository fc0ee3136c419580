"""Gather every page of the site as (path, template, context): a pure function of the loaded runs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from . import charts
from .load import ResultsError, Run
from .render import chart_json

GALLERY_SIZE = 12  # most uncertain images shown per dropout rate
GOOD_BAD_PER_CLASS = 2  # most robust and most vulnerable images shown per class
CHUNK_SIZE = 500  # images per data file of the per-image view
PASS_BINS = 20  # bins of the true-class probability for the spread of the MC-dropout passes


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


def _tile(run: Run, row: Any) -> dict[str, Any]:
    """Where an image sits in its sprite sheet, as the values the template writes out."""
    tiles = run.manifest["tiles"]
    w, h = tiles["tile_width"], tiles["tile_height"]
    return {"sheet": f"tiles/{row['sheet']}", "width": w, "height": h,
            "position": f"-{int(row['sheet_col']) * w}px -{int(row['sheet_row']) * h}px"}


def _model(run: Run, p: float) -> dict[str, Any]:
    return next(m for m in run.manifest["models"] if float(m["dropout_p"]) == p)


def run_summary(run: Run) -> dict[str, Any]:
    d = run.manifest["dataset"]
    base = run_dir(run)
    return {"name": run.name, "href": f"{base}/uncertainty.html", "provenance": f"{base}/provenance.html",
            "attacks": f"{base}/attacks.html" if run.attack_names else "",
            "goodbad": f"{base}/good-bad.html" if "fgsm" in run.attack_names else "",
            "explorer": f"{base}/explorer.html", "dataset": d["name"],
            "test_images": d["test_images"], "classes": len(d["class_names"]),
            "image_shape": "×".join(str(s) for s in d["image_shape"]),
            "models": [{"dropout_p": m["dropout_p"], "architecture": m["architecture"],
                        "accuracy": m["accuracy"]} for m in sorted(run.manifest["models"], key=lambda m: m["dropout_p"])]}


def uncertainty_page(run: Run) -> Page:
    sections = []
    images = run.images.set_index("image_id")
    for p in run.dropout_ps:
        points = charts.image_points(run.uncertainty, run.class_names, p)
        calibration = run.calibration[(run.calibration["dropout_p"] == p) & (run.calibration["condition"] == "clean")]
        metrics = run.metrics[(run.metrics["dropout_p"] == p) & (run.metrics["condition"] == "clean")]
        overall = metrics[metrics["class_name"].isna()].iloc[0]
        per_class = metrics[metrics["class_name"].notna()]
        uncertain = points.sort_values(["entropy", "image_id"], ascending=[False, True]).head(GALLERY_SIZE)
        sections.append({
            "dropout_p": p,
            "anchor": f"p{p:g}",
            "accuracy": _model(run, p)["accuracy"],
            "overall": overall.to_dict(),
            "mean_entropy": float(points["entropy"].mean()),
            "mean_mutual_info": float(points["mutual_info"].mean()),
            "per_class": per_class.to_dict("records"),
            "spec": chart_json(charts.uncertainty_dashboard(points, calibration, run.class_names)),
            "gallery": [{"image_id": int(r.image_id), "class_name": r.class_name, "pred_name": r.pred_name,
                         "entropy": float(r.entropy), **_tile(run, images.loc[int(r.image_id)])}
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


def gather_pages(runs: list[Run]) -> tuple[list[Page], dict[str, Any]]:
    """Every page of the site in a stable order, and the per-image data files (path -> records)."""
    pages = [Page("index.html", "index.html", {"title": "robustviz", "runs": [run_summary(r) for r in runs]})]
    data: dict[str, Any] = {}
    for run in runs:
        pages += [uncertainty_page(run), provenance_page(run), explorer_page(run)]
        if run.attack_names:
            pages.append(attacks_page(run))
        if "fgsm" in run.attack_names:
            pages.append(good_bad_page(run))
        index, files = image_chunks(run)
        data.update(files)
        pages.append(image_page(run, index))
    return pages, data


def auroc(negatives: pd.Series, positives: pd.Series) -> float:
    """Area under the ROC curve of a score separating ``positives`` from ``negatives`` (ties count half):
    the chance that a random positive scores higher than a random negative."""
    if len(negatives) == 0 or len(positives) == 0:
        return float("nan")
    ranks = pd.concat([negatives, positives], ignore_index=True).rank(method="average")
    rank_sum = ranks.iloc[len(negatives):].sum()
    n_pos, n_neg = len(positives), len(negatives)
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def attack_summary(run: Run, p: float) -> list[dict[str, Any]]:
    """Per attack: success, mean distortions, iterations, speed, and whether uncertainty flags it."""
    rows = run.attacks[(run.attacks["dropout_p"] == p) & run.attacks["minimal"]]
    unc = run.uncertainty[run.uncertainty["dropout_p"] == p]
    clean = unc[unc["condition"] == "clean"]
    out = []
    for attack in run.attack_names:
        r = rows[rows["attack"] == attack]
        hit = r[r["success"]]
        adv = unc[unc["condition"] == attack]
        out.append({
            "attack": attack, "images": len(r), "success": float(r["success"].mean()),
            "l2": float(hit["l2"].mean()) if len(hit) else float("nan"),
            "linf": float(hit["linf"].mean()) if len(hit) else float("nan"),
            "perceptual_distance": float(hit["perceptual_distance"].mean()) if len(hit) else float("nan"),
            "flat_pixels_changed": float(hit["flat_pixels_changed"].mean()) if len(hit) else float("nan"),
            "l0": float(hit["l0"].mean()) if len(hit) else float("nan"),
            "iterations": float(r["iterations"].mean()),
            "entropy_clean": float(clean["entropy"].mean()), "entropy": float(adv["entropy"].mean()),
            "fooled_share": float(adv["fooled_share"].mean()),
            "entropy_auroc": auroc(clean["entropy"], adv["entropy"]),
            "mutual_info_auroc": auroc(clean["mutual_info"], adv["mutual_info"]),
        })
    return out


def fgsm_table(run: Run) -> list[dict[str, Any]]:
    """Accuracy under FGSM per (dropout p, eps), with the clean accuracy first."""
    points = charts.robustness_points(run.attacks, {float(m["dropout_p"]): m["accuracy"]
                                                    for m in run.manifest["models"]})
    return points.to_dict("records")


def attacks_page(run: Run) -> Page:
    sections = []
    for p in run.dropout_ps:
        points = charts.attack_points(run.attacks, run.uncertainty, run.images, run.class_names, p)
        sections.append({"dropout_p": p, "anchor": f"p{p:g}", "summary": attack_summary(run, p),
                         "spec": chart_json(charts.attack_dashboard(
                             points, charts.success_rates(run.attacks, run.images, run.class_names, p),
                             run.class_names, run.attack_names))})
    curve = None
    if "fgsm" in run.attack_names:
        curve = chart_json(charts.robustness_curve(charts.robustness_points(
            run.attacks, {float(m["dropout_p"]): m["accuracy"] for m in run.manifest["models"]})))
    return Page(f"{run_dir(run)}/attacks.html", "attacks.html", {
        "title": f"{run.name}: attacks", "run": run_summary(run), "sections": sections, "curve_spec": curve,
        "fgsm_rows": fgsm_table(run) if "fgsm" in run.attack_names else [],
        "params": run.manifest["attacks"]["resolved"]})


def _tile_refs(run: Run) -> dict[tuple, dict[str, Any]]:
    """(image_id, dropout_p, attack, kind) -> tile values for adversarials and heatmaps."""
    tiles = run.manifest["tiles"]
    w, h = tiles["tile_width"], tiles["tile_height"]
    return {(int(r.image_id), float(r.dropout_p), r.attack, r.kind):
            {"sheet": f"tiles/{r.sheet}", "width": w, "height": h,
             "position": f"-{int(r.sheet_col) * w}px -{int(r.sheet_row) * h}px"}
            for r in run.tiles.itertuples()}


def good_bad_page(run: Run) -> Page:
    """Per model and class, the most robust and the most vulnerable images (FGSM's smallest
    flipping epsilon; never flipped = most robust) with original, adversarials and heatmaps."""
    refs = _tile_refs(run)
    images = run.images.set_index("image_id")
    minimal = run.attacks[run.attacks["minimal"]].set_index(["image_id", "dropout_p", "attack"])
    names = run.class_names
    sections = []
    for p in run.dropout_ps:
        fg = run.attacks[(run.attacks["dropout_p"] == p) & (run.attacks["attack"] == "fgsm") & run.attacks["minimal"]]
        fg = fg.assign(label=fg["image_id"].map(images["label"]),
                       score=fg["min_eps"].fillna(float("inf")))
        classes = []
        for label, name in enumerate(names):
            rows = fg[fg["label"] == label].sort_values(["score", "image_id"], kind="stable")
            if rows.empty:
                continue

            def card(r: Any, kind: str) -> dict[str, Any]:
                image_id = int(r.image_id)
                attacks = []
                for attack in run.attack_names:
                    a = minimal.loc[(image_id, p, attack)]
                    attacks.append({"attack": attack, "success": bool(a["success"]), "adv_name": names[int(a["adv_pred"])],
                                    "adversarial": refs[(image_id, p, attack, "adversarial")],
                                    "heatmap": refs[(image_id, p, attack, "heatmap")]})
                return {"image_id": image_id, "kind": kind, "original": _tile(run, images.loc[image_id]),
                        "min_eps": None if r.min_eps != r.min_eps else float(r.min_eps), "attacks": attacks,
                        "href": f"image.html#id={image_id}"}

            robust = [card(r, "robust") for r in rows.iloc[::-1].head(GOOD_BAD_PER_CLASS).itertuples()]
            fragile = [card(r, "vulnerable") for r in rows.head(GOOD_BAD_PER_CLASS).itertuples()]
            classes.append({"class_name": name, "cards": robust + fragile})
        sections.append({"dropout_p": p, "anchor": f"p{p:g}", "classes": classes})
    return Page(f"{run_dir(run)}/good-bad.html", "good_bad.html", {
        "title": f"{run.name}: good & bad images", "run": run_summary(run), "sections": sections,
        "attack_names": run.attack_names})


def explorer_page(run: Run) -> Page:
    search_max = float(run.manifest["attacks"]["resolved"]["fgsm"]["search_max"]) if run.attack_names else 0.0
    points = charts.explorer_points(run.uncertainty, run.attacks, run.class_names, run.attack_names, search_max)
    max_entropy = float(run.uncertainty["entropy"].max()) if len(run.uncertainty) else 1.0
    spec = charts.explorer_chart(points, run.class_names, run.attack_names, run.dropout_ps, max_entropy)
    return Page(f"{run_dir(run)}/explorer.html", "explorer.html", {
        "title": f"{run.name}: explorer", "run": run_summary(run), "spec": chart_json(spec),
        "images": int(run.images["image_id"].nunique())})


ATTACK_FIELDS = ["success", "adv_pred", "adv_prob", "l0", "l2", "linf", "perceptual_distance", "flat_pixels_changed",
                 "iterations", "min_eps", "c"]
CONDITION_FIELDS = ["pred", "entropy", "mutual_info", "fooled_share", "mean_probs", "passes"]
ACTIVATION_FIELDS = ["layer", "condition", "maps", "sheet", "col", "row", "width", "height"]


def _num(value: Any, digits: int) -> float | None:
    value = float(value)
    return None if value != value else round(value, digits)


def tile_layout(run: Run) -> dict[str, Any]:
    """Sheets of every tile kind, checked to share one regular layout: the image at position i of
    the images table sits at sheet i // per_sheet, column (i % per_sheet) % cols, row ... // cols.
    The per-image view then needs only each image's position."""
    w = run.manifest["tiles"]["tile_width"]
    cols = int(run.manifest["tiles"]["sheet_cols"])
    per_sheet = cols * cols
    sheets_of = lambda frame: sorted(frame["sheet"].unique().tolist())  # noqa: E731
    pos = pd.Series(range(len(run.images)), index=run.images["image_id"].to_numpy())
    layout: dict[str, Any] = {"cols": cols, "per_sheet": per_sheet, "width": w,
                              "height": run.manifest["tiles"]["tile_height"], "original": sheets_of(run.images),
                              "attacks": [{} for _ in run.dropout_ps]}

    def check(frame: pd.DataFrame, what: str) -> None:
        i = pos.loc[frame["image_id"].to_numpy()].to_numpy()
        sheets = sheets_of(frame)
        expected_sheet = [sheets[k] for k in i // per_sheet]
        ok = ((frame["sheet_col"].to_numpy() == (i % per_sheet) % cols) &
              (frame["sheet_row"].to_numpy() == (i % per_sheet) // cols) &
              (frame["sheet"].to_numpy() == expected_sheet))
        if not ok.all():
            raise ResultsError(f"tiles of {what} in {run.path} are not laid out in image order; "
                               f"re-run `robustviz compute`")

    check(run.images, "the original images")
    for (p, attack, kind), frame in run.tiles.groupby(["dropout_p", "attack", "kind"], sort=True):
        check(frame, f"{kind} p={p:g} {attack}")
        layout["attacks"][run.dropout_ps.index(float(p))].setdefault(attack, {})[kind] = sheets_of(frame)
    return layout


def image_records(run: Run) -> list[dict[str, Any]]:
    """Everything the per-image view shows, one compact record per test image (in images-table order).

    Per model (in dropout order): conditions as lists of CONDITION_FIELDS (in "clean", *attacks order;
    "passes" counts the MC passes in PASS_BINS equal bins of the true-class probability), attacks as
    lists of ATTACK_FIELDS, activation-map tiles as lists of ACTIVATION_FIELDS. Lists instead of
    objects keep the data files small (the full MNIST test set must fit a free host).
    """
    conditions = ["clean", *run.attack_names]
    unc = {(int(r.image_id), float(r.dropout_p), r.condition): r for r in run.uncertainty.itertuples()}
    att = {(int(r.image_id), float(r.dropout_p), r.attack): r
           for r in run.attacks[run.attacks["minimal"]].itertuples()}
    acts: dict[tuple[int, float], list] = {}
    for m in run.activations.itertuples():
        acts.setdefault((int(m.image_id), float(m.dropout_p)), []).append(
            [m.layer, m.condition, int(m.maps), f"tiles/{m.sheet}", int(m.sheet_col), int(m.sheet_row),
             int(m.tile_width), int(m.tile_height)])
    records = []
    for position, row in enumerate(run.images.itertuples()):
        image_id = int(row.image_id)
        models = []
        for p in run.dropout_ps:
            cond = []
            for c in conditions:
                u = unc[(image_id, p, c)]
                cond.append([int(u.pred), _num(u.entropy, 4), _num(u.mutual_info, 4), _num(u.fooled_share, 3),
                             [_num(v, 3) for v in u.mean_probs],
                             np.histogram(np.asarray(u.pass_true_prob, dtype=np.float64), bins=PASS_BINS,
                                          range=(0.0, 1.0))[0].tolist()])
            results = []
            for a in run.attack_names:
                r = att[(image_id, p, a)]
                results.append([int(bool(r.success)), int(r.adv_pred), _num(r.adv_prob, 4), int(r.l0), _num(r.l2, 4),
                                _num(r.linf, 4), _num(r.perceptual_distance, 2), int(r.flat_pixels_changed),
                                int(r.iterations), _num(r.min_eps, 5), _num(r.c, 5)])
            models.append({"conditions": cond, "attacks": results, "activations": acts.get((image_id, p), [])})
        records.append({"image_id": image_id, "class_name": row.class_name, "pos": position, "models": models})
    return records


def image_chunks(run: Run) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The per-image data split into files of CHUNK_SIZE images: (index, {path: records})."""
    records = sorted(image_records(run), key=lambda r: r["image_id"])
    index, files = [], {}
    for k in range(0, len(records), CHUNK_SIZE):
        part = records[k:k + CHUNK_SIZE]
        name = f"data/images-{k // CHUNK_SIZE:03d}.js"
        index.append({"first": part[0]["image_id"], "last": part[-1]["image_id"], "file": name})
        files[f"{run_dir(run)}/{name}"] = part
    return index, files


def image_page(run: Run, index: list[dict[str, Any]]) -> Page:
    conditions = ["clean", *run.attack_names]
    ids = run.images["image_id"].sort_values().tolist()
    return Page(f"{run_dir(run)}/image.html", "image.html", {
        "title": f"{run.name}: image", "run": run_summary(run),
        "index": {"chunks": index, "ids": ids, "conditions": conditions, "attacks": run.attack_names,
                  "class_names": run.class_names, "dropout_ps": run.dropout_ps, "tiles": tile_layout(run),
                  "fields": {"conditions": CONDITION_FIELDS, "attacks": ATTACK_FIELDS,
                             "activations": ACTIVATION_FIELDS}},
        "probs_spec": chart_json(charts.image_probs_chart(run.class_names, conditions)),
        "passes_spec": chart_json(charts.image_passes_chart(conditions, run.manifest["config"]["uncertainty"]["passes"]))})
