"""Gather every page of the site as (path, template, context): a pure function of the loaded runs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pandas as pd

from . import charts
from .load import Run
from .render import chart_json

GALLERY_SIZE = 12  # most uncertain images shown per dropout rate


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


def _tile(run: Run, row: pd.Series) -> dict[str, Any]:
    """Where an image sits in its sprite sheet, as the values the template writes out."""
    tiles = run.manifest["tiles"]
    w, h = tiles["tile_width"], tiles["tile_height"]
    return {"sheet": f"tiles/{row['sheet']}", "width": w, "height": h,
            "position": f"-{int(row['sheet_col']) * w}px -{int(row['sheet_row']) * h}px"}


def _model(run: Run, p: float) -> dict[str, Any]:
    return next(m for m in run.manifest["models"] if float(m["dropout_p"]) == p)


def run_summary(run: Run) -> dict[str, Any]:
    d = run.manifest["dataset"]
    return {"name": run.name, "href": f"{run_dir(run)}/uncertainty.html",
            "provenance": f"{run_dir(run)}/provenance.html", "dataset": d["name"],
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


def gather_pages(runs: list[Run]) -> list[Page]:
    """Every page of the site, in a stable order."""
    pages = [Page("index.html", "index.html", {"title": "robustviz", "runs": [run_summary(r) for r in runs]})]
    for run in runs:
        pages += [uncertainty_page(run), provenance_page(run)]
    return pages
