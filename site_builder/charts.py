"""Charts as pure functions: DataFrame in, Altair chart out (tested as data through ``to_dict()``).

Every selection parameter is named explicitly, so a chart's spec is the same on every build.
"""
from __future__ import annotations

import warnings

import altair as alt
import pandas as pd

# Chart data is inlined on purpose (the site must open from file://, where nothing can be fetched);
# render.compact_spec stores it as CSV. Altair's 5,000-row guard would stop the full MNIST test set.
alt.data_transformers.disable_max_rows()

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
        # Dots, not bars: the means sit close to 1, and bars on a cut axis would overstate differences.
        return base.mark_circle(size=160, opacity=1).encode(
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


ATTACK_COLORS = {"fgsm": "#4c78a8", "lbfgs": "#f58518", "iaa": "#54a24b", "clean": "#9d9d9d"}


def robustness_points(attacks: pd.DataFrame, clean_accuracy: dict[float, float]) -> pd.DataFrame:
    """Accuracy under FGSM per (dropout_p, eps), with eps = 0 the clean accuracy (dropout off)."""
    rows = attacks[(attacks["attack"] == "fgsm") & attacks["eps"].notna()]
    curve = rows.groupby(["dropout_p", "eps"], as_index=False)["success"].mean()
    curve["accuracy"] = 1.0 - curve.pop("success")
    zero = pd.DataFrame({"dropout_p": list(clean_accuracy), "eps": 0.0, "accuracy": list(clean_accuracy.values())})
    out = pd.concat([zero, curve], ignore_index=True).sort_values(["dropout_p", "eps"], kind="stable")
    out["dropout_p"] = out["dropout_p"].map(lambda p: f"p = {p:g}")
    return out.round(5).reset_index(drop=True)


def robustness_curve(points: pd.DataFrame) -> alt.Chart:
    """Accuracy vs FGSM epsilon, one line per dropout rate."""
    return alt.Chart(points).mark_line(point=True).encode(
        x=alt.X("eps:Q", title="FGSM ε (L∞ budget)"),
        y=alt.Y("accuracy:Q", title="accuracy under attack", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("dropout_p:N", title="model"),
        tooltip=["dropout_p:N", alt.Tooltip("eps:Q", format=".4f"), alt.Tooltip("accuracy:Q", format=".1%")],
    ).properties(title="Robustness curve (FGSM)", width=360, height=240)


ATTACK_POINT_COLUMNS = ["image_id", "attack", "class_name", "adv_name", "success", "l2", "linf",
                        "perceptual_distance", "entropy", "entropy_clean", "mutual_info", "mutual_info_clean",
                        "fooled_share"]


def attack_points(attacks: pd.DataFrame, uncertainty: pd.DataFrame, images: pd.DataFrame, class_names: list[str],
                  p: float) -> pd.DataFrame:
    """One row per (image, attack) for dropout rate ``p``: the minimal adversarial's outcome, its
    distortion, and MC-dropout uncertainty of the adversarial next to the clean image's."""
    rows = attacks[(attacks["dropout_p"] == p) & attacks["minimal"]]
    unc = uncertainty[uncertainty["dropout_p"] == p].set_index(["image_id", "condition"])
    clean = unc.xs("clean", level="condition")
    names = pd.Series(class_names)
    adv_key = pd.MultiIndex.from_arrays([rows["image_id"], rows["attack"]])
    label = rows["image_id"].map(images.set_index("image_id")["label"])
    out = pd.DataFrame({
        "image_id": rows["image_id"].to_numpy(), "attack": rows["attack"].to_numpy(),
        "class_name": names[label.to_numpy()].to_numpy(), "adv_name": names[rows["adv_pred"].to_numpy()].to_numpy(),
        "success": rows["success"].to_numpy(), "l2": rows["l2"].to_numpy(), "linf": rows["linf"].to_numpy(),
        "perceptual_distance": rows["perceptual_distance"].to_numpy(),
        "entropy": unc.loc[adv_key, "entropy"].to_numpy(),
        "entropy_clean": clean.loc[rows["image_id"], "entropy"].to_numpy(),
        "mutual_info": unc.loc[adv_key, "mutual_info"].to_numpy(),
        "mutual_info_clean": clean.loc[rows["image_id"], "mutual_info"].to_numpy(),
        "fooled_share": unc.loc[adv_key, "fooled_share"].to_numpy(),
    })
    floats = ["l2", "linf", "perceptual_distance", "entropy", "entropy_clean", "mutual_info", "mutual_info_clean",
              "fooled_share"]
    out[floats] = out[floats].round(4)
    return out.sort_values(["attack", "image_id"], kind="stable").reset_index(drop=True)


def success_rates(attacks: pd.DataFrame, images: pd.DataFrame, class_names: list[str], p: float) -> pd.DataFrame:
    """Success rate per (class, attack, budget) for dropout rate ``p``: FGSM at every configured epsilon
    (its minimal adversarial always succeeds, so it says nothing here), L-BFGS and IAA within their
    search limits."""
    rows = attacks[(attacks["dropout_p"] == p) & ((attacks["attack"] != "fgsm") | attacks["eps"].notna())]
    rows = rows[rows["minimal"] | rows["eps"].notna()]
    label = rows["image_id"].map(images.set_index("image_id")["label"])
    budget = rows["eps"].map(lambda e: "" if e != e else f" ε={e:g}")
    frame = pd.DataFrame({"class_name": pd.Series(class_names)[label.to_numpy()].to_numpy(),
                          "attack": rows["attack"].to_numpy(), "budget": (rows["attack"] + budget).to_numpy(),
                          "success": rows["success"].to_numpy()})
    out = frame.groupby(["class_name", "attack", "budget"], as_index=False, sort=False).agg(
        success=("success", "mean"), images=("success", "size"))
    return out.round(5).sort_values(["attack", "budget", "class_name"], kind="stable").reset_index(drop=True)


def attack_dashboard(points: pd.DataFrame, rates: pd.DataFrame, class_names: list[str],
                     attack_names: list[str]) -> alt.VConcatChart:
    """Success per class and attack, distortion distributions, true -> adversarial class matrix, and
    uncertainty of clean vs adversarial images, for one dropout rate.

    Clicking a bar picks a (class, attack); the legend picks an attack; brushing the L2 histogram
    picks images by distortion. The distributions, matrix and uncertainty views show only what is
    picked; ``rates`` (from ``success_rates``) feeds the success bars.
    """
    bar_pick = alt.selection_point(name="bar_pick", fields=["class_name", "attack"])
    attack_pick = alt.selection_point(name="attack_pick", fields=["attack"], bind="legend")
    l2_brush = alt.selection_interval(name="l2_brush", encodings=["x"])
    picked = bar_pick & attack_pick
    color = alt.Color("attack:N", title="attack", sort=attack_names,
                      scale=alt.Scale(domain=attack_names, range=[ATTACK_COLORS.get(a, "#888") for a in attack_names]))
    base = alt.Chart(points)

    budgets = sorted(rates["budget"].unique().tolist(), key=lambda b: (attack_names.index(b.split()[0])
                                                                       if b.split()[0] in attack_names else 99, b))
    success = alt.Chart(rates).mark_bar().encode(
        x=alt.X("class_name:N", title="true class", sort=class_names),
        xOffset=alt.XOffset("budget:N", sort=budgets),
        y=alt.Y("success:Q", title="success rate", scale=alt.Scale(domain=[0, 1])),
        color=color,
        opacity=alt.condition(picked, alt.value(1.0), alt.value(0.3)),
        tooltip=["class_name:N", alt.Tooltip("budget:N", title="attack"),
                 alt.Tooltip("success:Q", title="success rate", format=".1%"), alt.Tooltip("images:Q")],
    ).add_params(bar_pick, attack_pick).properties(
        title="Attack success per class (FGSM at each ε)", width=2 * WIDTH, height=HEIGHT, name="success_bars")

    def distribution(field: str, title: str, name: str, brush: bool = False) -> alt.Chart:
        chart = base.mark_bar(opacity=0.75).encode(
            x=alt.X(f"{field}:Q", bin=alt.Bin(maxbins=30), title=title),
            y=alt.Y("count():Q", title="images", stack=None),
            color=color,
            tooltip=["attack:N", alt.Tooltip("count():Q", title="images")],
        ).transform_filter(picked).properties(title=f"Distribution of {title}", width=WIDTH, height=HEIGHT - 40,
                                              name=name)
        return chart.add_params(l2_brush) if brush else chart.transform_filter(l2_brush)

    matrix = base.transform_filter(picked).transform_filter(l2_brush).transform_filter("datum.success").mark_rect().encode(
        x=alt.X("adv_name:N", title="adversarial prediction", sort=class_names),
        y=alt.Y("class_name:N", title="true class", sort=class_names),
        color=alt.Color("count():Q", title="images", scale=alt.Scale(scheme="oranges")),
        tooltip=["class_name:N", "adv_name:N", alt.Tooltip("count():Q", title="images")],
    ).properties(title="True → adversarial class (successful attacks)", width=WIDTH, height=WIDTH, name="matrix")

    def versus(field: str, title: str, name: str) -> alt.Chart:
        return base.transform_filter(picked).transform_filter(l2_brush).transform_fold(
            [f"{field}_clean", field], as_=["image", "value"]
        ).transform_calculate(
            image=f"datum.image == '{field}' ? 'adversarial' : 'clean'"
        ).mark_bar(opacity=0.6).encode(
            x=alt.X("value:Q", bin=alt.Bin(maxbins=30), title=title),
            y=alt.Y("count():Q", title="images", stack=None),
            color=alt.Color("image:N", title="image", scale=alt.Scale(domain=["clean", "adversarial"],
                                                                      range=["#9d9d9d", "#e45756"])),
            tooltip=["image:N", alt.Tooltip("count():Q", title="images")],
        ).properties(title=f"{title}: clean vs adversarial", width=WIDTH, height=HEIGHT - 40, name=name)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter")
        return alt.vconcat(
            alt.hconcat(success, matrix),
            alt.hconcat(distribution("l2", "L2 distortion", "l2_hist", brush=True),
                        distribution("linf", "L∞ distortion", "linf_hist"),
                        distribution("perceptual_distance", "perceptual distance D", "pd_hist")),
            alt.hconcat(versus("entropy", "Entropy (nats)", "entropy_versus"),
                        versus("mutual_info", "Mutual information (nats)", "mi_versus")),
        ).resolve_scale(color="independent")


EXPLORER_COLUMNS = ["image_id", "dropout_p", "class_name", "pred_name", "correct", "entropy", "mutual_info",
                    "min_eps", "fooled", "href"]


def explorer_points(uncertainty: pd.DataFrame, attacks: pd.DataFrame, class_names: list[str],
                    attack_names: list[str], search_max: float) -> pd.DataFrame:
    """One row per (image, dropout rate): clean prediction and uncertainty, FGSM robustness
    (min_eps; never flipped = search_max), the attacks that fooled it, and its view's link."""
    clean = uncertainty[uncertainty["condition"] == "clean"]
    names = pd.Series(class_names)
    out = pd.DataFrame({
        "image_id": clean["image_id"].to_numpy(), "dropout_p": clean["dropout_p"].to_numpy(),
        "class_name": names[clean["label"].to_numpy()].to_numpy(), "pred_name": names[clean["pred"].to_numpy()].to_numpy(),
        "correct": (clean["pred"] == clean["label"]).to_numpy(),
        "entropy": clean["entropy"].round(4).to_numpy(), "mutual_info": clean["mutual_info"].round(4).to_numpy(),
    })
    minimal = attacks[attacks["minimal"]].set_index(["image_id", "dropout_p", "attack"])
    key = [out["image_id"], out["dropout_p"]]
    fooled = pd.Series([""] * len(out))
    for attack in attack_names:
        idx = pd.MultiIndex.from_arrays([*key, [attack] * len(out)])
        hit = minimal.loc[idx, "success"].to_numpy()
        fooled = fooled.where(~hit, fooled + " " + attack)
        if attack == "fgsm":
            out["min_eps"] = minimal.loc[idx, "min_eps"].fillna(search_max).round(5).to_numpy()
    if "min_eps" not in out:
        out["min_eps"] = 0.0
    out["fooled"] = fooled.str.strip().to_numpy()
    out["href"] = [f"image.html#id={i}" for i in out["image_id"]]
    return out[EXPLORER_COLUMNS].sort_values(["dropout_p", "image_id"], kind="stable").reset_index(drop=True)


def explorer_chart(points: pd.DataFrame, class_names: list[str], attack_names: list[str],
                   dropout_ps: list[float], max_entropy: float) -> alt.VConcatChart:
    """Every test image as a point (FGSM robustness vs entropy), filtered by widgets for the model,
    class, prediction, attack outcome and uncertainty; a click opens the image's view."""
    model = alt.param(name="model", value=dropout_ps[0],
                      bind=alt.binding_select(options=dropout_ps, labels=[f"p = {p:g}" for p in dropout_ps],
                                              name="model "))
    klass = alt.param(name="klass", value="all", bind=alt.binding_select(
        options=["all", *class_names], name="class "))
    outcome = alt.param(name="outcome", value="all", bind=alt.binding_select(
        options=["all", "correct", "wrong"], name="clean prediction "))
    attack_options = ["any outcome", *[f"fooled by {a}" for a in attack_names], "fooled by every attack",
                      "fooled by none"]
    fooled = alt.param(name="fooled", value="any outcome", bind=alt.binding_select(options=attack_options,
                                                                                   name="attacks "))
    min_entropy = alt.param(name="min_entropy", value=0.0, bind=alt.binding_range(
        min=0.0, max=round(max_entropy, 3), step=0.01, name="entropy at least "))
    every = " && ".join(f"indexof(split(datum.fooled, ' '), '{a}') >= 0" for a in attack_names) or "false"
    condition = (
        "datum.dropout_p == model && (klass == 'all' || datum.class_name == klass)"
        " && (outcome == 'all' || (outcome == 'correct') == datum.correct)"
        " && datum.entropy >= min_entropy"
        " && (fooled == 'any outcome'"
        " || (fooled == 'fooled by none' && datum.fooled == '')"
        f" || (fooled == 'fooled by every attack' && {every})"
        " || (indexof(fooled, 'fooled by ') == 0 && indexof(split(datum.fooled, ' '), slice(fooled, 10)) >= 0))"
    )
    base = alt.Chart(points).transform_filter(condition)
    scatter = base.mark_point(filled=True, size=36, opacity=0.7, cursor="pointer").encode(
        x=alt.X("min_eps:Q", title="FGSM robustness: smallest flipping ε"),
        y=alt.Y("entropy:Q", title="entropy of the clean image (nats)"),
        color=_class_color(class_names),
        shape=alt.Shape("correct:N", title="clean prediction", scale=alt.Scale(domain=[True, False],
                                                                                range=["circle", "cross"]),
                        legend=alt.Legend(labelExpr="datum.value ? 'correct' : 'wrong'")),
        href="href:N",
        tooltip=[alt.Tooltip("image_id:Q", title="image"), alt.Tooltip("class_name:N", title="class"),
                 alt.Tooltip("pred_name:N", title="predicted"), alt.Tooltip("min_eps:Q", format=".4f"),
                 alt.Tooltip("entropy:Q", format=".3f"), alt.Tooltip("fooled:N", title="fooled by")],
    ).add_params(model, klass, outcome, fooled, min_entropy).properties(
        title="Every test image (click one to open its view)", width=640, height=360, name="explorer")
    counts = base.mark_bar().encode(
        x=alt.X("class_name:N", title="class", sort=class_names),
        y=alt.Y("count():Q", title="images shown"),
        color=_class_color(class_names),
        tooltip=["class_name:N", alt.Tooltip("count():Q", title="images")],
    ).properties(title="Images shown per class", width=640, height=120)
    return alt.vconcat(scatter, counts)


def image_probs_chart(class_names: list[str], conditions: list[str]) -> alt.Chart:
    """Class probabilities (MC mean) of one image before and after each attack; the page fills the
    named dataset ``probs`` with rows (condition, class_name, prob)."""
    return alt.Chart(alt.NamedData(name="probs")).mark_bar().encode(
        x=alt.X("class_name:N", title="class", sort=class_names),
        xOffset=alt.XOffset("condition:N", sort=conditions),
        y=alt.Y("prob:Q", title="mean probability", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("condition:N", title="image", sort=conditions,
                        scale=alt.Scale(domain=conditions, range=[ATTACK_COLORS.get(c, "#888") for c in conditions])),
        tooltip=["condition:N", "class_name:N", alt.Tooltip("prob:Q", format=".3f")],
    ).properties(title="Class probabilities before and after each attack", width=420, height=200)


def image_passes_chart(conditions: list[str], passes: int) -> alt.Chart:
    """Spread of the true-class probability over the MC-dropout passes, one strip per condition
    (a histogram drawn as a heat strip); the page fills the named dataset ``passes`` with rows
    (condition, lower, upper, count)."""
    return alt.Chart(alt.NamedData(name="passes")).mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("lower:Q", title="probability of the true class in one pass", scale=alt.Scale(domain=[0, 1])),
        x2="upper:Q",
        y=alt.Y("condition:N", title=None, sort=conditions),
        color=alt.Color("count:Q", title="passes", scale=alt.Scale(domain=[0, passes], range=["#ffffff", "#08306b"])),
        tooltip=["condition:N", alt.Tooltip("lower:Q", format=".2f"), alt.Tooltip("upper:Q", format=".2f"),
                 alt.Tooltip("count:Q", title="passes")],
    ).properties(title=f"Spread of the {passes} MC-dropout passes", width=420, height=30 * len(conditions))
