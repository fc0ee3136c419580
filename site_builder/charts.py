"""Charts as pure functions: DataFrame in, Altair chart out (tested as data through ``to_dict()``).
The rows they plot come from site_builder/chart_data.py.

Every selection parameter is named explicitly, so a chart's spec is the same on every build. Chart
data is inlined (the site must open from file://, where nothing can be fetched); the build lifts
Altair's 5,000-row guard while it renders (site_builder/build.py), nowhere else.
"""
from __future__ import annotations

import json

import warnings

import altair as alt
import pandas as pd

from compute.contract import PALETTE, SCORES, class_colours

WIDTH, HEIGHT = 260, 220


def _class_color(class_names: list[str]) -> alt.Color:
    return alt.Color("class_name:N", title="class", sort=class_names,
                     scale=alt.Scale(domain=class_names, range=class_colours(len(class_names))))


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

    def per_class(field: str, title: str, axis: str, name: str) -> alt.LayerChart:
        # Bars from zero, so that a difference of 0.001 between classes looks like one; each class's
        # whisker is its mean's 95% interval (mean ± 1.96 SD/√n over the images in view), computed in
        # the browser from the brushed points, so it narrows and widens with the selection. The outputs
        # are named after ``field``: Vega-Lite merges aggregates of one source with the same groupby,
        # and two bar charts with outputs of the same names would both draw whichever came first.
        mean, sd, n, low, high = (f"{field}_{s}" for s in ("mean", "sd", "n", "low", "high"))
        stats = base.transform_filter(brush).transform_aggregate(
            **{mean: f"mean({field})", sd: f"stdev({field})", n: "count()"}, groupby=["class_name"],
        ).transform_calculate(
            **{low: f"max(0, datum.{mean} - 1.96 * datum.{sd} / sqrt(datum.{n}))",
               high: f"min(1, datum.{mean} + 1.96 * datum.{sd} / sqrt(datum.{n}))"})
        tooltip = [alt.Tooltip("class_name:N", title="class"), alt.Tooltip(f"{mean}:Q", title=axis, format=".4f"),
                   alt.Tooltip(f"{low}:Q", title="95% interval from", format=".4f"),
                   alt.Tooltip(f"{high}:Q", title="95% interval to", format=".4f"), alt.Tooltip(f"{n}:Q", title="images")]
        bars = stats.mark_bar().encode(
            x=alt.X("class_name:N", title="class", sort=class_names),
            y=alt.Y(f"{mean}:Q", title=f"{axis} (95% interval)", scale=alt.Scale(domain=[0, 1], zero=True)),
            color=color,
            opacity=alt.condition(chosen, alt.value(1.0), alt.value(0.25)),
            tooltip=tooltip,
        ).add_params(bar_pick).properties(name=name)
        whiskers = stats.mark_rule(color="#222", strokeWidth=1.5).encode(
            x=alt.X("class_name:N", sort=class_names), y=f"{low}:Q", y2=f"{high}:Q", tooltip=tooltip)
        return alt.layer(bars, whiskers).properties(
            title=alt.Title(title, subtitle="mean per class of the images in view, 95% interval"),
            width=WIDTH, height=HEIGHT)

    def histogram(field: str, title: str, name: str) -> alt.Chart:
        return base.mark_bar().encode(
            x=alt.X(f"{field}:Q", bin=alt.Bin(maxbins=30), title=title),
            y=alt.Y("count():Q", title="images", stack=True),
            color=alt.Color("correct:N", title="prediction (histograms)", scale=alt.Scale(
                domain=[True, False], range=[PALETTE["correct"], PALETTE["wrong"]]),
                legend=alt.Legend(labelExpr="datum.value ? 'correct' : 'wrong'")),
            tooltip=[alt.Tooltip("count():Q", title="images"), alt.Tooltip("correct:N", title="correct")],
        ).transform_filter(brush).transform_filter(chosen).properties(
            title=f"Distribution of {title[0].lower()}{title.split(' (')[0][1:]}", width=WIDTH, height=HEIGHT - 40,
            name=name)

    with warnings.catch_warnings():
        # bar_pick is deliberately shared by both bar charts; Altair warns when it merges it.
        warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter")
        return _dashboard_layout(scatter, per_class, histogram, calibration)


def _dashboard_layout(scatter, per_class, histogram, calibration) -> alt.VConcatChart:
    top = alt.hconcat(scatter,
                      per_class("confidence", "Confidence vs Class", "mean confidence", "confidence_bars"),
                      per_class("true_prob", "Accuracy vs Class", "mean accuracy", "accuracy_bars"))
    bottom = alt.hconcat(histogram("entropy", "Entropy H[p̄] (nats)", "entropy_hist"),
                         histogram("mutual_info", "Mutual information (nats)", "mutual_info_hist"),
                         reliability_diagram(calibration))
    return alt.vconcat(top, bottom).resolve_scale(color="independent")


def reliability_diagram(calibration: pd.DataFrame) -> alt.LayerChart:
    """Accuracy per confidence bin against the diagonal of perfect calibration (one dropout rate)."""
    data = calibration[["lower", "upper", "n_images", "mean_top_prob", "accuracy"]].copy()
    data = data[data["n_images"] > 0].round(5)
    # Grey: the blue of "correct" in the histograms beside it would read as a share of correct images.
    bars = alt.Chart(data).mark_rect(color=PALETTE["neutral"], opacity=0.8, stroke="white").encode(
        x=alt.X("lower:Q", title="top probability (confidence bin)", scale=alt.Scale(domain=[0, 1])),
        x2="upper:Q",
        y=alt.Y("accuracy:Q", title="accuracy in bin", scale=alt.Scale(domain=[0, 1])),
        y2=alt.datum(0),
        tooltip=[alt.Tooltip("lower:Q", format=".2f"), alt.Tooltip("upper:Q", format=".2f"),
                 alt.Tooltip("n_images:Q", title="images"), alt.Tooltip("mean_top_prob:Q", format=".3f"),
                 alt.Tooltip("accuracy:Q", format=".3f")])
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0]})).mark_line(color="#888", strokeDash=[4, 4]).encode(
        x="x:Q", y="x:Q")
    # Each bin's N above its bar: an empty-looking bin of 3 images and a full one of 400 read differently.
    # Written upwards: a bin is about 15 px wide, and "29" beside "412" written across would overlap.
    counts = alt.Chart(data.assign(middle=(data["lower"] + data["upper"]) / 2)).mark_text(
        angle=270, dx=4, fontSize=9, color="#1f2328", align="left", baseline="middle").encode(
        x="middle:Q", y="accuracy:Q", text=alt.Text("n_images:Q", format="d"))
    return alt.layer(bars, diagonal, counts).properties(
        title=alt.Title("Reliability diagram", subtitle="N images above each bin", offset=24),
        width=WIDTH, height=HEIGHT - 40)


def accuracy_by_model(metrics: pd.DataFrame, labels: dict[str, str]) -> alt.Chart:
    """Accuracy and ECE of each model (all classes, clean images), for the run's summary; ``labels``:
    model key -> label, in run order."""
    data = metrics[metrics["class_name"].isna() & (metrics["condition"] == "clean")]
    data = data.assign(model=data["model"].map(labels))
    names = {"accuracy": "MC-dropout accuracy", "ece": "ECE (15 bins)"}  # as the table above names them
    data = data.melt(id_vars=["model", "n_images"], value_vars=list(names), var_name="figure").round(5)
    data = data.assign(figure=data["figure"].map(names))
    return alt.Chart(data).mark_bar(color=PALETTE["bar"]).encode(
        x=alt.X("model:O", title="model", sort=list(labels.values())),
        y=alt.Y("value:Q", title=None),
        column=alt.Column("figure:N", title=None, sort=list(names.values())),
        tooltip=["model:O", "figure:N", alt.Tooltip("value:Q", format=".4f"), alt.Tooltip("n_images:Q", title="images (N)")],
    ).properties(width=140, height=160).resolve_scale(y="independent")


def robustness_curve(points: pd.DataFrame, attack_label: str, model_colours: dict[str, str],
                     runs: list[str] | None = None) -> alt.Chart | alt.FacetChart:
    """Accuracy vs the budget ε of the attack labelled ``attack_label``, one line per model
    (``model_colours``: each model's label, in run order, with its colour). With ``runs`` (``points``
    has a run column), one panel per run side by side on shared axes: ε is in the pixel range [0, 1]
    for every dataset, so the runs compare. The page's caption names the images counted."""
    chart = alt.Chart(points).mark_line(point=True).encode(
        x=alt.X("eps:Q", title=f"{attack_label} ε (L∞ budget)"),
        y=alt.Y("accuracy:Q", title="accuracy under attack", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N", title="model", sort=list(model_colours),
                        scale=alt.Scale(domain=list(model_colours), range=list(model_colours.values()))),
        tooltip=["model:N", alt.Tooltip("eps:Q", format=".4f"), alt.Tooltip("accuracy:Q", format=".1%")],
    )
    if runs is None:
        return chart.properties(title=f"Robustness curve ({attack_label})", width=360, height=240)
    return chart.properties(width=300, height=220).facet(column=alt.Column("run:N", sort=runs, title=None)).properties(
        title=f"Accuracy under {attack_label} against ε, every run")


def attack_dashboard(points: pd.DataFrame, rates: pd.DataFrame, class_names: list[str],
                     attack_colours: dict[str, str]) -> alt.VConcatChart:
    """Success per class and attack, distortion distributions, true -> adversarial class matrix, and
    uncertainty of clean vs adversarial images, for one dropout rate.

    Clicking a bar picks a (class, attack); the legend picks an attack; brushing the L2 histogram
    picks images by distortion. The distributions, matrix and uncertainty views show only what is
    picked; ``rates`` (from ``chart_data.success_points``) feeds the success bars. Populations: success
    rates count the clean-correct images; distortions, the class matrix and the adversarial side of
    the uncertainty views count successful attacks only, the clean side the clean-correct images, each
    once however many of the picked attacks it met. Each view's subtitle names its population; the page's
    caption gives the N of each. ``attack_colours`` maps each attack, in run order, to its colour (from
    its card in the manifest).
    """
    attack_names = list(attack_colours)
    bar_pick = alt.selection_point(name="bar_pick", fields=["class_name", "attack"])
    attack_pick = alt.selection_point(name="attack_pick", fields=["attack"], bind="legend")
    l2_brush = alt.selection_interval(name="l2_brush", encodings=["x"])
    picked = bar_pick & attack_pick
    # The distributions' outlines: an attack's colour from its card.
    stroke = alt.Stroke("attack:N", title="attack", sort=attack_names,
                        scale=alt.Scale(domain=attack_names, range=list(attack_colours.values())))
    base = alt.Chart(points)

    # Rows by attack in run order; within one, as success_points orders them (operating point, then ε).
    of = dict(zip(rates["variant"], rates["attack"]))
    variants = sorted(of, key=lambda v: attack_names.index(of[v]) if of[v] in attack_names else len(attack_names))
    # A cell per (attack at an operating point or budget, class), its success rate written in it: a bar
    # per variant made 12 slivers per class, told apart by colour shade alone.
    cells = alt.Chart(rates).encode(
        x=alt.X("class_name:N", title="true class", sort=class_names),
        y=alt.Y("variant:N", title=None, sort=variants),
        tooltip=["class_name:N", alt.Tooltip("variant:N", title="attack"),
                 alt.Tooltip("success_rate:Q", title="success rate", format=".1%"), alt.Tooltip("n_images:Q", title="images (N)")])
    success = alt.layer(
        cells.mark_rect(stroke="white").encode(
            color=alt.Color("success_rate:Q", title="success rate", scale=alt.Scale(domain=[0, 1], scheme="blues"),
                            legend=alt.Legend(format=".0%")),
            opacity=alt.condition(picked, alt.value(1.0), alt.value(0.3))).add_params(bar_pick).properties(
            name="success_bars"),
        # The percentage without its sign (chart_data.success_points): "100" fits a cell on a phone, "100%" does not.
        cells.mark_text(fontSize=9).encode(
            text=alt.Text("percent:Q", format="d"),
            color=alt.condition("datum.success_rate > 0.6", alt.value("white"), alt.value("#1f2328"))),
    ).properties(
        title=alt.Title("Attack success per class",
                        subtitle="clean-correct images; a row per attack at each operating point and budget ε; "
                                 "success in %"),
        width=2 * WIDTH, height=alt.Step(16))

    def distribution(field: str, title: str, name: str, brush: bool = False) -> alt.Chart:
        # Each attack's bins as outlines, not translucent fills: overlaid fills blend into colours no
        # legend names and hide one attack behind another. Bars, not a step line: an attack whose values
        # all fall in one bin (IAA's D) is a line of one point, which draws nothing.
        chart = base.mark_bar(fillOpacity=0, strokeWidth=1.5).encode(
            x=alt.X(f"{field}:Q", bin=alt.Bin(maxbins=30), title=title),
            y=alt.Y("count():Q", title="images", stack=None),
            stroke=stroke,
            tooltip=["attack:N", alt.Tooltip("count():Q", title="images")],
        ).transform_filter("datum.success").transform_filter(picked).properties(
            title=alt.Title(title, subtitle="successful attacks"), width=WIDTH,
            height=HEIGHT - 40, name=name)
        # The attack legend picks attacks: it is this view's (the success cells are coloured by rate).
        return chart.add_params(l2_brush, attack_pick) if brush else chart.transform_filter(l2_brush)

    matrix = base.transform_filter(picked).transform_filter(l2_brush).transform_filter("datum.success").mark_rect().encode(
        x=alt.X("adv_name:N", title="adversarial prediction", sort=class_names),
        y=alt.Y("class_name:N", title="true class", sort=class_names),
        color=alt.Color("count():Q", title="images", scale=alt.Scale(scheme="oranges")),
        tooltip=["class_name:N", "adv_name:N", alt.Tooltip("count():Q", title="images")],
    ).properties(title=alt.Title("True → adversarial class",
                                 subtitle="successful minimal adversarials of the picked attacks, pooled; white: none"),
                 width=WIDTH, height=WIDTH, name="matrix")

    def versus(field: str, title: str, name: str) -> alt.Chart:
        return base.transform_filter(picked).transform_filter(l2_brush).transform_fold(
            [f"{field}_clean", field], as_=["image", "value"]
        ).transform_calculate(
            image=f"datum.image == '{field}' ? 'adversarial' : 'clean'"
        ).transform_filter(  # clean side: the attacked (clean-correct) images; adversarial side: successes
            "datum.image == 'clean' ? datum.clean_correct : datum.success"
        ).transform_window(  # a clean image attacked by several attacks is still one clean image
            copy="row_number()", groupby=["image", "image_id"]
        ).transform_filter("datum.image == 'adversarial' || datum.copy == 1").mark_line(
            interpolate="step", strokeWidth=1.75).encode(  # outlines: overlaid bars would blend
            x=alt.X("value:Q", bin=alt.Bin(maxbins=30), title=title),
            y=alt.Y("count():Q", title="images", stack=None),
            color=alt.Color("image:N", title="image", scale=alt.Scale(domain=["clean", "adversarial"],
                                                                      range=[PALETTE["clean"], PALETTE["wrong"]])),
            tooltip=["image:N", alt.Tooltip("count():Q", title="images")],
        ).properties(title=alt.Title(f"{title}: clean vs adversarial",
                                     subtitle="clean-correct images, each once; successful adversarials"),
                     width=WIDTH, height=HEIGHT - 40, name=name)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter")
        return alt.vconcat(
            alt.hconcat(success, matrix).resolve_scale(color="independent"),  # a rate and a count: two ramps
            alt.hconcat(distribution("l2", "L2 distortion", "l2_hist", brush=True),
                        distribution("linf", "L∞ distortion", "linf_hist"),
                        distribution("perceptual_distance", "perceptual distance D", "pd_hist")),
            alt.hconcat(versus("entropy", "Entropy (nats)", "entropy_versus"),
                        versus("mutual_info", "Mutual information (nats)", "mi_versus")),
        ).resolve_scale(color="independent")


def image_probs_chart(class_names: list[str], condition_colours: dict[str, str]) -> alt.Chart:
    """Class probabilities (MC mean) of one image before and after each attack; the page fills the
    named dataset ``probs`` with rows (condition, class_name, prob). ``condition_colours``: each
    condition shown, in order, with its colour."""
    conditions = list(condition_colours)
    return alt.Chart(alt.NamedData(name="probs")).mark_bar().encode(
        x=alt.X("class_name:N", title="class", sort=class_names),
        xOffset=alt.XOffset("condition:N", sort=conditions),
        y=alt.Y("prob:Q", title="mean probability", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("condition:N", title="image", sort=conditions,
                        scale=alt.Scale(domain=conditions, range=list(condition_colours.values()))),
        tooltip=["condition:N", "class_name:N", alt.Tooltip("prob:Q", format=".3f")],
    ).properties(title=alt.Title("Class probabilities before and after each attack",
                                 subtitle="mean of the passes: MC dropout's, or an ensemble's members (the table above: the model as attacked)"),
                 width=420, height=200)


def pass_histogram_chart(conditions: list[str], passes: int) -> alt.Chart:
    """Spread of the true-class probability over the passes (MC dropout's ``passes``, or an ensemble's
    members), one strip per condition (a histogram drawn as a heat strip, coloured by the share of the
    passes in each bin); the page fills the named dataset ``pass_histogram`` with rows (condition, lower,
    upper, count, share)."""
    return alt.Chart(alt.NamedData(name="pass_histogram")).mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("lower:Q", title="probability of the true class in one pass", scale=alt.Scale(domain=[0, 1])),
        x2="upper:Q",
        y=alt.Y("condition:N", title=None, sort=conditions),
        color=alt.Color("share:Q", title="share of passes", scale=alt.Scale(domain=[0, 1], range=["#ffffff", "#08306b"])),
        tooltip=["condition:N", alt.Tooltip("lower:Q", format=".2f"), alt.Tooltip("upper:Q", format=".2f"),
                 alt.Tooltip("count:Q", title="passes")],
    ).properties(title=alt.Title("Spread of the passes", subtitle=f"MC dropout: {passes} passes; an ensemble: one per member"),
                 width=420, height=30 * len(conditions))


SCORE_NAMES = list(SCORES)
SCORE_COLORS = [PALETTE["scores"][s] for s in SCORE_NAMES]


def picked_title(name: str, lines: dict[str, list[str]], default_variant: str) -> tuple[alt.Parameter, alt.ExprRef]:
    """A title that follows the picked positives (Vega-Lite lets a title's text, not its subtitle, be an
    expression): ``lines`` maps each variant to its lines, held in the top-level parameter ``name``
    (which must end in ``_lines``: static/chart-fit.js re-wraps such a parameter's lines for a narrow
    screen, which it cannot do inside an expression); the expression looks the variant up in the
    ``variant_pick`` selection (the default before a pick). Returns the parameter and the title text."""
    assert name.endswith("_lines"), name
    pick = "(isArray(variant_pick.variant) ? variant_pick.variant[0] : '')"
    return (alt.param(name=name, value=lines),
            alt.ExprRef(expr=f"{name}[{pick}] || {name}[{json.dumps(default_variant, ensure_ascii=False)}]"))


def detection_dashboard(points: pd.DataFrame, roc: pd.DataFrame, eps: pd.DataFrame, risk: pd.DataFrame,
                        default_variant: str, populations: dict[str, str | list[str]],
                        eps_label: str, picked: dict[str, dict[str, list[str]]] | None = None) -> alt.VConcatChart:
    """Does uncertainty flag the attack? For one dropout rate: AUROC with its 95% interval per
    positives (an attack at an operating point or budget, or a noise control) and score; the ROC
    curves; the mean score against the ranking attack's ε (``eps_label``) beside its noise control;
    risk-coverage curves.

    Clicking a row of the AUROC view picks its positives: the ROC and risk-coverage views show them.
    The score legend picks scores: every view shows only those. ``populations`` holds each view's
    subtitle (who is counted, and N); ``picked`` ("roc", "risk" -> variant -> subtitle lines), where
    given, makes those two subtitles follow the picked positives."""
    picked = picked or {}
    titles = {key: picked_title(f"{key}_lines", lines, default_variant) for key, lines in picked.items()}
    # Bound to legend clicks only: Vega-Lite's default legend stream also reacts to clicks on marks,
    # which would clear the picked scores whenever positives are picked in the AUROC view.
    score_pick = alt.selection_point(name="score_pick", fields=["score"], clear=False,
                                     bind=alt.LegendStreamBinding(
                                         legend="click[event.item && indexof(event.item.mark.role, 'legend') >= 0]"),
                                     value=[{"score": "entropy"}, {"score": "max_prob"}])
    variant_pick = alt.selection_point(name="variant_pick", fields=["variant"], value=[{"variant": default_variant}])
    color = alt.Color("score:N", title="score", sort=SCORE_NAMES,
                      scale=alt.Scale(domain=SCORE_NAMES, range=SCORE_COLORS))
    order = list(dict.fromkeys(points["variant"]))
    base = alt.Chart(points).encode(
        y=alt.Y("variant:N", title=None, sort=order),
        yOffset=alt.YOffset("score:N", sort=SCORE_NAMES),
        color=color,
        tooltip=["variant:N", "score:N", alt.Tooltip("auroc:Q", format=".3f"), alt.Tooltip("auroc_low:Q", format=".3f"),
                 alt.Tooltip("auroc_high:Q", format=".3f"), alt.Tooltip("aupr:Q", format=".3f"),
                 alt.Tooltip("fpr_at_95tpr:Q", title="FPR at 95% TPR", format=".3f"),
                 alt.Tooltip("n_adv:Q", title="positives (N)"), alt.Tooltip("n_clean:Q", title="negatives (N)")],
    ).transform_filter(score_pick)
    interval = base.mark_rule().encode(x=alt.X("auroc_low:Q", title="AUROC (95% bootstrap interval)",
                                               scale=alt.Scale(domain=[0, 1])), x2="auroc_high:Q")
    dot = base.mark_point(filled=True, size=40).encode(
        x="auroc:Q", shape=alt.Shape("kind:N", title="positives",
                                     scale=alt.Scale(domain=["adversarial", "noise control", "unattacked",
                                                             "made on one member", "out-of-distribution"],
                                                     range=["circle", "triangle", "square", "cross", "diamond"])),
        opacity=alt.condition(variant_pick, alt.value(1.0), alt.value(0.45)))
    chance = alt.Chart(pd.DataFrame({"x": [0.5]})).mark_rule(strokeDash=[4, 4], color="#999").encode(x="x:Q")
    aurocs = alt.layer(interval, dot.add_params(variant_pick, score_pick), chance).properties(
        title=alt.Title("Detection AUROC: clean-correct images vs each kind of positive", subtitle=populations["auroc"]),
        width=320, height=alt.Step(7), name="auroc_dots")

    curves = alt.Chart(roc).mark_line(clip=True).encode(
        x=alt.X("fpr:Q", title="false positive rate (clean images flagged)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("tpr:Q", title="true positive rate (positives flagged)", scale=alt.Scale(domain=[0, 1])),
        color=color, detail="variant:N",
        tooltip=["variant:N", "score:N", alt.Tooltip("fpr:Q", format=".3f"), alt.Tooltip("tpr:Q", format=".3f")],
    ).transform_filter(variant_pick).transform_filter(score_pick)
    diagonal = alt.Chart(pd.DataFrame({"fpr": [0, 1], "tpr": [0, 1]})).mark_line(strokeDash=[4, 4], color="#999").encode(
        x="fpr:Q", y="tpr:Q")
    rocs = alt.layer(curves, diagonal).properties(
        title=alt.Title(titles["roc"][1], subtitle=populations["roc"][:2])
        if "roc" in picked else alt.Title("ROC curves of the picked positives", subtitle=populations["roc"]),
        width=280, height=280,
        name="roc_curves")

    images = [f"{eps_label} adversarial", "noise control"]
    eps_base = alt.Chart().encode(
        # Ticks at the budgets measured (greedy: labels never overlap).
        x=alt.X("eps:Q", title=f"{eps_label} ε", axis=alt.Axis(values=sorted(float(v) for v in eps["eps"].unique()),
                                                              labelOverlap="greedy", format="~g")),
        y=alt.Y("mean:Q", title="mean score", scale=alt.Scale(zero=False)),
        color=color,
        tooltip=["score:N", "image:N", alt.Tooltip("eps:Q", format=".4f"), alt.Tooltip("mean:Q", format=".4f"),
                 alt.Tooltip("n_images:Q", title="images (N)")],
    )
    # The lines alone carry the solid/dashed legend, drawn as strokes; points on a line would turn its
    # symbols into two identical dots.
    eps_lines = eps_base.mark_line().encode(strokeDash=alt.StrokeDash(
        "image:N", title="image", sort=images, scale=alt.Scale(domain=images, range=[[1, 0], [4, 3]]),
        legend=alt.Legend(symbolType="stroke", symbolStrokeColor="#1f2328", symbolSize=300)))
    eps_points = eps_base.mark_point(filled=True, size=25).encode(detail="image:N")
    # The scores not picked are filtered out before the facet, so that no panel is left empty.
    against_eps = alt.layer(eps_lines, eps_points).properties(width=180, height=160).facet(
        column=alt.Column("score:N", title=None, sort=SCORE_NAMES), data=eps).transform_filter(
        score_pick).resolve_scale(y="independent").properties(
        title=alt.Title(f"Uncertainty against {eps_label} ε, beside noise of the same size", subtitle=populations["eps"]))

    def risk_layer(clean: bool) -> alt.Chart:
        chart = alt.Chart(risk).mark_line(clip=True, strokeDash=[4, 3] if clean else [1, 0]).encode(
            x=alt.X("coverage:Q", title="coverage (share of images kept, most certain first)",
                    scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("risk:Q", title="risk (error rate of the kept images)"),
            color=color, detail="variant:N",
            tooltip=["variant:N", "score:N", alt.Tooltip("coverage:Q", format=".3f"), alt.Tooltip("risk:Q", format=".3f"),
                     alt.Tooltip("aurc:Q", title="AURC", format=".4f"), alt.Tooltip("n_images:Q", title="images (N)")])
        chart = chart.transform_filter(alt.datum.variant == "clean") if clean else chart.transform_filter(variant_pick)
        return chart.transform_filter(score_pick)

    risks = alt.layer(risk_layer(True), risk_layer(False)).properties(
        title=alt.Title(titles["risk"][1], subtitle=populations["risk"][:2])
        if "risk" in picked else alt.Title("Risk–coverage: clean (dashed) and under the picked attack (solid)",
                                           subtitle=populations["risk"]),
        width=280, height=280, name="risk_coverage")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter")
        chart = alt.vconcat(alt.hconcat(aurocs, alt.vconcat(rocs, risks)), against_eps).resolve_scale(color="shared")
    if titles:  # top-level variables, beside the selections Altair lifted there (add_params would push them into the views)
        lifted = [] if chart.params is alt.Undefined else list(chart.params)
        chart.params = lifted + [param.param for param, _ in titles.values()]
    return chart


def confidence_fits(points: pd.DataFrame, fits: pd.DataFrame, models: list[str]) -> alt.HConcatChart:
    """Claim (a)'s figure: per model (``models``, labels in run order), confidence against accuracy on
    the clean images (``points``: model, true_prob, confidence) with the two least-squares fits drawn
    (``fits``: model, fit, true_prob, confidence), a line in p̄ (dashed) and a line in p̄(1 − p̄), the
    bound's shape (solid)."""
    names = list(dict.fromkeys(fits["fit"]))
    views = []
    for model in models:
        dots = alt.Chart(points[points["model"] == model]).mark_circle(size=14, color=PALETTE["neutral"], opacity=0.6).encode(
            x=alt.X("true_prob:Q", title="accuracy p̄ (mean probability of the true class)", scale=alt.Scale(domain=[0, 1])),
            # confidence is at most 1: the axis stops there (a "nice" axis would run on to 1.01)
            y=alt.Y("confidence:Q", title="confidence (1 − variance of the true class)",
                    scale=alt.Scale(zero=False, nice=False, domainMax=1)),
            tooltip=[alt.Tooltip("image_id:Q", title="image"), alt.Tooltip("true_prob:Q", format=".3f"),
                     alt.Tooltip("confidence:Q", format=".4f")])
        lines = alt.Chart(fits[fits["model"] == model]).mark_line(color="#1f2328", strokeWidth=2).encode(
            x="true_prob:Q", y="confidence:Q",
            strokeDash=alt.StrokeDash("fit:N", title="least-squares fit", sort=names,
                                      scale=alt.Scale(domain=names, range=[[6, 4], [1, 0]]),
                                      legend=alt.Legend(symbolType="stroke", symbolStrokeColor="#1f2328",
                                                        symbolSize=300, labelLimit=320)),
            tooltip=["fit:N"])
        views.append(alt.layer(dots, lines).properties(title=model, width=WIDTH, height=WIDTH))
    return alt.hconcat(*views)


def interval_panels(rows: pd.DataFrame, panels: list[str], model_colours: dict[str, str], x_title: str,
                    columns: int = 3, reference: float = 0.0, independent: bool = True) -> alt.FacetChart:
    """Figures with their 95% intervals, one panel per ``panels`` entry: ``rows`` (panel, comparison,
    model, value, low, high, verdict, n) one mark per row, the comparisons down the panel, the models
    (labels, in run order, with their colours) as colour and offset; the dashed rule is ``reference``
    (0: no difference; 0.5: a chance AUROC). A hollow dot's verdict is "not distinguishable" (an
    interval that contains the reference), a filled one any other. ``independent``: each panel its own
    x scale (differences of unlike measures), else one shared scale (like figures, compared across panels)."""
    names = list(model_colours)
    colour = alt.Color("model:N", title="model", sort=names,
                       scale=alt.Scale(domain=names, range=list(model_colours.values())))
    y = alt.Y("comparison:N", title=None, sort=list(dict.fromkeys(rows["comparison"])))
    offset = alt.YOffset("model:N", sort=names)
    whiskers = alt.Chart().mark_rule(strokeWidth=2).encode(
        x=alt.X("low:Q", title=x_title), x2="high:Q", y=y, yOffset=offset, color=colour)
    tooltip = [alt.Tooltip("model:N"), alt.Tooltip("comparison:N"), alt.Tooltip("value:Q", format=".3f", title="difference"),
               alt.Tooltip("low:Q", format=".3f", title="95% low"), alt.Tooltip("high:Q", format=".3f", title="95% high"),
               alt.Tooltip("n:Q", title="images (N)"), alt.Tooltip("verdict:N")]
    dots = alt.Chart().mark_point(size=45, strokeWidth=1.5).encode(
        x="value:Q", y=y, yOffset=offset, color=colour, tooltip=tooltip,
        fill=alt.condition("datum.verdict == 'not distinguishable'", alt.value("white"), colour))
    zero = alt.Chart().mark_rule(color=PALETTE["neutral"], strokeDash=[4, 3]).encode(x=alt.datum(reference))
    height = max(60, 14 * len(names) * rows["comparison"].nunique())
    return alt.layer(zero, whiskers, dots, data=rows).properties(width=200, height=height).facet(
        facet=alt.Facet("panel:N", sort=panels, title=None), columns=columns).resolve_scale(
        x="independent" if independent else "shared")


def equal_cost(rows: pd.DataFrame, methods: dict[str, str]) -> alt.FacetChart:
    """The uncertainty methods at equal cost, one panel per measure (``rows``: panel, row, method, value,
    low, high, cost, n; the rows of the methods table as labelled, top to bottom in table order): a dot with
    its 95% interval where the measure has one (accuracy, NLL, ECE, detection Δ), a dot alone for a cost
    (milliseconds per image, training images: low = high = value). Colour: the method (``methods``:
    label -> colour). Every panel has every layer's rows, so none is drawn empty."""
    names = list(methods)
    colour = alt.Color("method:N", title="method", sort=names, scale=alt.Scale(domain=names, range=list(methods.values())))
    y = alt.Y("row:N", title=None, sort=list(dict.fromkeys(rows["row"])))
    tooltip = [alt.Tooltip("row:N", title="method"), alt.Tooltip("panel:N", title="measure"),
               alt.Tooltip("value:Q", format=".4g"), alt.Tooltip("low:Q", format=".4g", title="95% low"),
               alt.Tooltip("high:Q", format=".4g", title="95% high"), alt.Tooltip("n:Q", title="images (N)")]
    whiskers = alt.Chart().mark_rule(strokeWidth=2).encode(
        x=alt.X("low:Q", title=None, scale=alt.Scale(zero=False)), x2="high:Q", y=y, color=colour)
    dots = alt.Chart().mark_point(size=50, filled=True).encode(x="value:Q", y=y, color=colour, tooltip=tooltip)
    layered = alt.layer(whiskers, dots, data=rows)
    return layered.properties(width=200, height=max(60, 18 * rows["row"].nunique())).facet(
        facet=alt.Facet("panel:N", sort=list(dict.fromkeys(rows["panel"])), title=None), columns=3).resolve_scale(
        x="independent")
