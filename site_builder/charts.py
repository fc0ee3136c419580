"""Charts as pure functions: DataFrame in, Altair chart out (tested as data through ``to_dict()``).

Every selection parameter is named explicitly, so a chart's spec is the same on every build.
"""
from __future__ import annotations

import warnings

import altair as alt
import pandas as pd

POINT_COLUMNS = ["image_id", "class_name", "pred_name", "correct", "confidence", "true_prob", "top_prob",
                 "entropy", "mutual_info", "variation_ratio"]
WIDTH, HEIGHT = 260, 220


def image_points(uncertainty: pd.DataFrame, class_names: list[str], p: float,
                 condition: str = "clean") -> pd.DataFrame:
    """One row per image for dropout rate ``p`` and ``condition``: the columns the charts plot."""
    rows = uncertainty[(uncertainty["dropout_p"] == p) & (uncertainty["condition"] == condition)]
    names = pd.Series(class_names)
    out = pd.DataFrame({
        "image_id": rows["image_id"].astype(int).to_numpy(),
        "class_name": names[rows["label"].to_numpy()].to_numpy(),
        "pred_name": names[rows["pred"].to_numpy()].to_numpy(),
        "correct": (rows["pred"] == rows["label"]).to_numpy(),
    })
    for col in POINT_COLUMNS[4:]:
        out[col] = rows[col].to_numpy().round(5)
    return out.sort_values("image_id", kind="stable").reset_index(drop=True)


def _class_color(class_names: list[str]) -> alt.Color:
    return alt.Color("class_name:N", title="class", sort=class_names,
                     scale=alt.Scale(domain=class_names, scheme="tableau10" if len(class_names) <= 10 else "tableau20"))


def uncertainty_dashboard(points: pd.DataFrame, calibration: pd.DataFrame, class_names: list[str]) -> alt.VConcatChart:
    """The seed's three charts for one dropout rate, linked, with uncertainty distributions and the
    reliability diagram.

    Brushing the Confidence vs Accuracy scatter filters the per-class bars and the histograms;
    clicking a class (legend entry or bar) highlights its points and filters the histograms.
    """
    brush = alt.selection_interval(name="brush", encodings=["x", "y"])
    legend_pick = alt.selection_point(name="legend_pick", fields=["class_name"], bind="legend")
    bar_pick = alt.selection_point(name="bar_pick", fields=["class_name"])
    chosen = legend_pick & bar_pick
    color = _class_color(class_names)
    base = alt.Chart(points)

    scatter = base.mark_circle(size=28).encode(
        x=alt.X("true_prob:Q", title="Accuracy (mean probability of the true class)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("confidence:Q", title="Confidence (1 − variance of the true class)", scale=alt.Scale(zero=False)),
        color=color,
        opacity=alt.condition(chosen, alt.value(0.75), alt.value(0.06)),
        tooltip=[alt.Tooltip("image_id:Q", title="image"), alt.Tooltip("class_name:N", title="class"),
                 alt.Tooltip("pred_name:N", title="predicted"), alt.Tooltip("true_prob:Q", format=".3f"),
                 alt.Tooltip("confidence:Q", format=".4f"), alt.Tooltip("entropy:Q", format=".3f"),
                 alt.Tooltip("mutual_info:Q", format=".3f")],
    ).add_params(brush, legend_pick).properties(
        title="Confidence vs Accuracy", width=WIDTH + 40, height=HEIGHT, name="scatter")

    def per_class(field: str, title: str, axis: str, name: str) -> alt.Chart:
        return base.mark_bar().encode(
            x=alt.X("class_name:N", title="class", sort=class_names),
            y=alt.Y(f"mean({field}):Q", title=axis, scale=alt.Scale(zero=False)),
            color=color,
            opacity=alt.condition(chosen, alt.value(1.0), alt.value(0.25)),
            tooltip=[alt.Tooltip("class_name:N", title="class"),
                     alt.Tooltip(f"mean({field}):Q", title=axis, format=".4f"),
                     alt.Tooltip("count():Q", title="images")],
        ).transform_filter(brush).add_params(bar_pick).properties(
            title=title, width=WIDTH, height=HEIGHT, name=name)

    def histogram(field: str, title: str, name: str) -> alt.Chart:
        return base.mark_bar().encode(
            x=alt.X(f"{field}:Q", bin=alt.Bin(maxbins=30), title=title),
            y=alt.Y("count():Q", title="images", stack=True),
            color=alt.Color("correct:N", title="prediction", scale=alt.Scale(
                domain=[True, False], range=["#4c78a8", "#e45756"]),
                legend=alt.Legend(labelExpr="datum.value ? 'correct' : 'wrong'")),
            tooltip=[alt.Tooltip("count():Q", title="images"), alt.Tooltip("correct:N", title="correct")],
        ).transform_filter(brush).transform_filter(chosen).properties(
            title=f"Distribution of {title.split(' (')[0].lower()}", width=WIDTH, height=HEIGHT - 40, name=name)

    with warnings.catch_warnings():
        # bar_pick is deliberately shared by both bar charts; Altair warns when it merges it.
        warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter")
        return _dashboard_layout(scatter, per_class, histogram, calibration)


def _dashboard_layout(scatter, per_class, histogram, calibration) -> alt.VConcatChart:  # noqa: ANN001
    top = alt.hconcat(scatter,
                      per_class("confidence", "Confidence vs Class", "mean confidence", "confidence_bars"),
                      per_class("true_prob", "Accuracy vs Class", "mean accuracy", "accuracy_bars"))
    bottom = alt.hconcat(histogram("entropy", "Entropy H[p̄] (nats)", "entropy_hist"),
                         histogram("mutual_info", "Mutual information (nats)", "mutual_info_hist"),
                         reliability_diagram(calibration))
    return alt.vconcat(top, bottom).resolve_scale(color="independent")


def reliability_diagram(calibration: pd.DataFrame) -> alt.LayerChart:
    """Accuracy per confidence bin against the diagonal of perfect calibration (one dropout rate)."""
    data = calibration[["lower", "upper", "count", "mean_top_prob", "accuracy"]].copy()
    data = data[data["count"] > 0].round(5)
    bars = alt.Chart(data).mark_rect(color="#4c78a8", opacity=0.8, stroke="white").encode(
        x=alt.X("lower:Q", title="top probability (confidence bin)", scale=alt.Scale(domain=[0, 1])),
        x2="upper:Q",
        y=alt.Y("accuracy:Q", title="accuracy in bin", scale=alt.Scale(domain=[0, 1])),
        y2=alt.datum(0),
        tooltip=[alt.Tooltip("lower:Q", format=".2f"), alt.Tooltip("upper:Q", format=".2f"),
                 alt.Tooltip("count:Q", title="images"), alt.Tooltip("mean_top_prob:Q", format=".3f"),
                 alt.Tooltip("accuracy:Q", format=".3f")])
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0]})).mark_line(color="#888", strokeDash=[4, 4]).encode(
        x="x:Q", y="x:Q")
    return alt.layer(bars, diagonal).properties(title="Reliability diagram", width=WIDTH, height=HEIGHT - 40)


def accuracy_by_dropout(metrics: pd.DataFrame) -> alt.Chart:
    """Accuracy and ECE of each dropout rate (all classes), for the run's summary."""
    data = metrics[metrics["class_name"].isna() & (metrics["condition"] == "clean")]
    data = data.melt(id_vars=["dropout_p"], value_vars=["accuracy", "ece"], var_name="figure").round(5)
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("dropout_p:O", title="dropout p"),
        y=alt.Y("value:Q", title=None),
        color=alt.Color("figure:N", legend=None),
        column=alt.Column("figure:N", title=None),
        tooltip=["dropout_p:O", "figure:N", alt.Tooltip("value:Q", format=".4f")],
    ).properties(width=140, height=160).resolve_scale(y="independent")
