"""Gather every page of the site as (path, template, context): a pure function of the loaded runs.

Pages select and format what the tables hold; the rows each chart plots come from chart_data.py,
tile positions from tiles.py and the per-image view's data files from image_data.py.
"""
from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd

from compute.config import to_plain
from compute.metrics import wilson
from compute.findings import MIN_IMAGES, SEED_BASELINES, SUBJECT
from compute.ranking import extremes, ranked
from compute.contract import METHOD_LABELS, MC_SCORES, NOISE_PREFIX, OOD, SCORES, BUDGET, CLEAN, CONFIDENT, MINIMAL, PALETTE, condition_name
from compute.contract import model_colours as model_colours_of

from . import chart_data, charts, explorer_data, image_data, tiles
from .load import Run
from .render import chart_json, without_local_paths

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
    return {"name": run.name, "findings": f"{base}/findings.html", "uncertainty": f"{base}/uncertainty.html",
            "provenance": f"{base}/provenance.html",
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
    """Each attack of the run with its label (from its card): how every page names it; and the OOD
    images (key ``ood``), where the run has them, by their set's name."""
    out = {a: run.cards[a]["label"] for a in run.attack_names}
    if run.manifest.get("ood"):
        out[OOD] = f"OOD: {run.manifest['ood']['label']}"
    return out


def model_colours(run: Run) -> dict[str, str]:
    """Each model of the run, in order, by its label, with its colour (the palette's, contract.model_colours)."""
    names = list(labels(run).values())
    return dict(zip(names, model_colours_of(len(names))))


def attack_colours(run: Run) -> dict[str, str]:
    """Each attack of the run, in order, by its label, with its colour (from its card)."""
    return {run.cards[a]["label"]: run.cards[a]["colour"] for a in run.attack_names}


def condition_label(run: Run, condition: str) -> str:
    """How the site names a set of images (a condition of the tables): "clean", "FGSM minimal",
    "FGSM ε=0.1", "noise ~ FGSM confident": the names of the detection page (chart_data.variant)."""
    if condition == CLEAN:
        return "clean"
    noise = condition.startswith(NOISE_PREFIX)
    attack, _, point = condition.removeprefix(NOISE_PREFIX).partition("-")
    if attack not in run.cards:
        return condition
    eps = float(point[3:]) if point.startswith("eps") else None
    operating_point = BUDGET if eps is not None else (point or MINIMAL)
    return chart_data.variant(attack, operating_point, eps, attack_labels(run), "noise" if noise else "adversarial")


def condition_colours(run: Run, conditions: list[str]) -> dict[str, str]:
    """A colour per condition, by its label: clean grey; an attack's minimal adversarial its colour, the
    confident one its tint."""
    out = {}
    for c in conditions:
        if c == CLEAN:
            out[condition_label(run, c)] = PALETTE["clean"]
        for a in run.attack_names:
            if c == condition_name(a, MINIMAL):
                out[condition_label(run, c)] = run.cards[a]["colour"]
            elif c == condition_name(a, CONFIDENT):
                out[condition_label(run, c)] = run.cards[a]["confident_colour"]
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
            "per_class_n": float(metrics[metrics["class_name"].notna()]["n_images"].median()),
            "spec": chart_json(charts.uncertainty_dashboard(points, calibration, run.class_names)),
            "gallery": [{"image_id": int(r.image_id), "class_name": r.class_name, "pred_name": r.pred_name,
                         "entropy": float(r.entropy), "tile": tiles.image_tile(run, images.loc[int(r.image_id)])}
                        for r in uncertain.itertuples()],
        })
    return Page(f"{run_dir(run)}/uncertainty.html", "uncertainty.html",
                {"title": f"{run.name}: uncertainty", "run": run_summary(run), "sections": sections,
                 "passes": run.config.uncertainty.passes, "bins": run.config.uncertainty.bins,
                 "members": run.config.uncertainty.members,
                 "summary_spec": chart_json(charts.accuracy_by_model(run.metrics, labels(run)))})


def made_by(manifest: dict[str, Any]) -> dict[str, Any]:
    """What made the run, as the provenance page shows it: its UTC date, the code (version, commit,
    whether the checkout had changes) and the command, with the machine's paths shortened (a run
    assembled before the manifest recorded this says "not recorded")."""
    p = manifest.get("provenance") or {}
    code = p.get("code") or {}
    commit = code.get("commit")
    version = code.get("version", "not recorded")
    if commit:
        version += f", commit {commit}" + (" with uncommitted changes" if code.get("dirty") else "")
    command = p.get("command")
    return {"created": p.get("created") or "not recorded", "code": version,
            "command": " ".join(a if re.fullmatch(r"[\w@%+=:,./…-]+", a) else shlex.quote(a)
                                for a in without_local_paths(command)) if command else "not recorded"}


def used_config(manifest: dict[str, Any]) -> dict[str, Any]:
    """The configuration a run used: as written, with the attacks' section as resolved for its dataset
    (the file leaves budgets, steps and subsets unset, as empty lists, 0 or -1, to be filled in per
    dataset and from the adaptive attacker; the page shows the values the attacks ran with)."""
    resolved = (manifest.get("attacks") or {}).get("resolved")
    return {**manifest["config"], "attacks": resolved} if resolved else manifest["config"]


def provenance_page(run: Run) -> Page:
    m = run.manifest
    return Page(f"{run_dir(run)}/provenance.html", "provenance.html", {
        "title": f"{run.name}: provenance", "run": run_summary(run), "config": without_local_paths(used_config(m)),
        "resolved": used_config(m) is not m["config"],
        "made_by": made_by(m),
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
        sections.append({**model_section(run, key), "summary": summary, "populations": populations,
                         "spec": chart_json(charts.attack_dashboard(points, rates, run.class_names, attack_colours(run)))})
    curve, curve_rows, ranking, everyone = None, [], run.ranking, ""
    if ranking and not run.robustness.empty:
        robustness = chart_data.robustness_points(run.robustness, labels(run))
        everyone = f"all N = {len(run.images)} test images; those wrong before the attack count as wrong"
        curve = chart_json(charts.robustness_curve(robustness, run.cards[ranking]["label"], model_colours(run)))
        curve_rows = robustness.to_dict("records")
    return Page(f"{run_dir(run)}/attacks.html", "attacks.html", {
        "title": f"{run.name}: attacks", "run": run_summary(run), "sections": sections, "curve_spec": curve,
        "curve_caption": everyone,
        "curve_rows": curve_rows, "ensemble_images": run.config.uncertainty.ensemble_images
        if any(m["method"] != "mc_dropout" for m in run.models) else None, "curve_attack": run.cards[ranking]["label"] if ranking else "",
        "cards": [run.cards[a] for a in run.attack_names],
        "kappa": run.config.attacks.kappa, "params": to_plain(run.config.attacks), "subsets": subsets(run),
        "overview_spec": chart_json(charts.interval_panels(
            chart_data.success_rows(run.attack_summary, attack_labels(run), labels(run)), [MINIMAL, CONFIDENT],
            model_colours(run), "success rate (Wilson 95%)", columns=2, reference=1.0, independent=False))})


def subsets(run: Run) -> list[dict[str, Any]]:
    """The attacks run on a subset of the test images (too costly for all), with how many they attacked."""
    out = []
    for a in run.attack_names:
        limit = int(run.cards[a]["subset"])
        if limit and limit < len(run.images):
            out.append({"attack": a, "label": run.cards[a]["label"], "n_images": limit})
    return out




def _span(values: pd.Series, digits: int = 2) -> str:
    lo, hi = float(values.min()), float(values.max())
    return f"{lo:.{digits}f}" if round(lo, digits) == round(hi, digits) else f"{lo:.{digits}f} to {hi:.{digits}f}"


def _listed(names: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def _pairs(n: int) -> str:
    return f"{n} pair" if n == 1 else f"{n} pairs"


def _int(value: Any) -> int:
    return int(round(float(value)))


VERDICTS = ("Yes", "No", "Not distinguishable", "Mixed")


def detection_answer(detection: pd.DataFrame, key: str) -> tuple[str, str]:
    """The detection page's answer to its question, "does the uncertainty method flag attacks better
    than the plain softmax?", for one model, decided from the paired intervals of ΔAUROC = AUROC(MC
    score) - AUROC(max_prob) over every (adversarial set, MC score) pair; nothing is selected. "Yes"
    when some pairs' intervals lie above 0 and none below, "No" when some lie below and none above,
    "Mixed" when both happen (the answer depends on the attack, its point or the score: the sentence
    says how often each), "Not distinguishable" when every interval contains 0. Returns (verdict, the
    sentence with its N, the range of Δ and the count of pairs)."""
    rows = detection[(detection["model"] == key) & (detection["reference"] == "adversarial")
                     & detection["score"].isin(MC_SCORES) & (detection["n_adv"] > 0)
                     & detection["delta_vs_baseline"].notna()]
    if rows.empty:
        return VERDICTS[2], "No attack fooled this model, so there is nothing to detect."
    above, below = int((rows["delta_low"] > 0).sum()), int((rows["delta_high"] < 0).sum())
    verdict = (VERDICTS[3] if above and below else VERDICTS[0] if above else VERDICTS[1] if below else VERDICTS[2])
    sets = rows.drop_duplicates(["attack", "operating_point", "eps"])
    sentence = (f"{verdict}: over {len(rows)} pairs of an adversarial set ({len(sets)} sets, "
                f"{_int(sets['n_adv'].min())}–{_int(sets['n_adv'].max())} successful adversarials each, against "
                f"N = {_int(rows['n_clean'].min())}–{_int(rows['n_clean'].max())} clean-correct images) and an MC "
                f"score, ΔAUROC against the plain max-probability baseline runs from {rows['delta_vs_baseline'].min():+.3f} "
                f"to {rows['delta_vs_baseline'].max():+.3f}; its paired 95% interval lies above 0 for {_pairs(above)} "
                f"(the uncertainty better), below 0 for {below} (the softmax better) and contains 0 for "
                f"{len(rows) - above - below}.")
    return verdict, sentence


def detection_headline(detection: pd.DataFrame, keys: list[str], labels: dict[str, str]) -> dict[str, Any]:
    """The detection page's first sentence, its question answered for every model at once ("No, for
    every model." when the models agree), and each model's answer sentence (``detection_answer``: N,
    the range of ΔAUROC, how many paired intervals exclude 0) under it."""
    answers = {key: detection_answer(detection, key) for key in keys}
    verdicts = {verdict for verdict, _ in answers.values()}
    if len(verdicts) == 1 and len(keys) > 1:
        summary = f"{next(iter(verdicts))}, for every model."
    else:
        summary = "; ".join(f"{labels[key]}: {verdict}" for key, (verdict, _) in answers.items()) + "."
    return {"summary": summary, "models": [{"label": labels[key], "sentence": sentence}
                                           for key, (_, sentence) in answers.items()]}


def detection_takeaway(detection: pd.DataFrame, adaptive: pd.DataFrame, key: str,
                       cards: dict[str, dict[str, Any]]) -> list[str]:
    """Sentences a reader should take from one model's detection rows, each with its N and interval:
    the answer (``detection_answer``), the references (the noise controls and the same images
    unattacked, per-image gaps), and each adaptive attacker against its baseline on the same images
    (``adaptive`` rows; ``cards``: the run's attack cards)."""
    rows = detection[(detection["model"] == key) & (detection["n_adv"] > 0)]
    out = [detection_answer(detection, key)[1]]
    ent = rows[(rows["score"] == "entropy") & rows["operating_point"].isin([MINIMAL, CONFIDENT])]
    adv, noise, plain = (ent[ent["reference"] == r].set_index(["attack", "operating_point"])
                         for r in ("adversarial", "noise", "unattacked"))
    if not adv.empty:
        apart = adv[adv["gap_low"] > 0]
        out.append(f"References (entropy, minimal and confident adversarials, {len(adv)} sets of "
                   f"{_int(adv['n_adv'].min())}–{_int(adv['n_adv'].max())} successes, against N = "
                   f"{_int(adv['n_clean'].min())}–{_int(adv['n_clean'].max())} clean-correct images; each set's 95% "
                   f"interval in the table below): the adversarials "
                   f"score AUROC {_span(adv['auroc'])}, their noise controls of the same size {_span(noise['auroc'])}, "
                   f"and the same images unattacked already {_span(plain['auroc'])}. The per-image entropy gap "
                   f"adversarial − noise control has a 95% interval above 0 in {len(apart)} of {len(adv)} sets; "
                   f"an AUROC well above 0.5 for the unattacked images says the attack fools the images that were "
                   f"already uncertain, not that uncertainty sees the attack.")
    mine = adaptive[(adaptive["model"] == key) & (adaptive["score"] == "entropy")]
    for attack in (a for a, card in cards.items() if card["adaptive"]):
        at = mine[mine["attack"] == attack]
        if at["auroc"].isna().all():  # also when empty
            continue
        top = at.loc[at["eps"].idxmax()]
        marginal = rows[(rows["attack"] == attack) & (rows["reference"] == "adversarial") & (rows["score"] == "entropy")
                        & (rows["operating_point"] == BUDGET) & (rows["eps"] == top["eps"])]
        interval = (f" [{marginal['auroc_low'].iloc[0]:.2f}, {marginal['auroc_high'].iloc[0]:.2f}]"
                    if len(marginal) else "")
        base = cards[top["baseline"]]["label"]
        verdict = ("lower" if top["delta_high"] < 0 else "higher" if top["delta_low"] > 0 else "not distinguishable")
        out.append(f"The adaptive attacker ({cards[attack]['label']}: {cards[attack]['description']}; "
                   f"{cards[attack].get('settings', '')}) at ε = {top['eps']:g}: entropy AUROC {top['auroc']:.2f}"
                   f"{interval} on its {_int(top['n_adv'])} successful adversarials against N = {_int(top['n_clean'])} "
                   f"clean-correct images ({'below' if top['auroc'] < 0.5 else 'above'} chance, 0.5), against "
                   f"{top['auroc_baseline']:.2f} for {base}, which knows nothing of dropout, on the same images "
                   f"({_int(top['n_baseline'])} successes): Δ = {top['delta']:+.2f} [{top['delta_low']:+.2f}, "
                   f"{top['delta_high']:+.2f}], {verdict}.")
    return out


def _lines(text: str, width: int = 50) -> list[str]:
    return textwrap.wrap(text, width)


def _auroc_with(row: Any) -> str:
    return f"{row['auroc']:.2f} [{row['auroc_low']:.2f}, {row['auroc_high']:.2f}]"


def roc_sentence(points: pd.DataFrame, picked_variant: str) -> str:
    """The ROC figure's take-away for one picked set: its entropy and max_prob AUROC, with N, intervals and
    the paired difference."""
    picked = points[points["variant"] == picked_variant].set_index("score")  # a variant names its kind too
    if {"entropy", "max_prob"} <= set(picked.index):
        e = picked.loc["entropy"]
        what = "adversarials" if e["kind"] == "adversarial" else "positives"
        return (f"Take-away: for {picked_variant} ({_int(e['n_adv'])} {what}, N = {_int(e['n_clean'])} clean), "
                f"entropy AUROC {_auroc_with(e)} against max_prob {_auroc_with(picked.loc['max_prob'])}: paired "
                f"Δ {e['delta_vs_baseline']:+.3f} [{e['delta_low']:+.3f}, {e['delta_high']:+.3f}].")
    return "Take-away: no ROC curve for this pick."


def risk_curves(risk: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, score) of chart_data.risk_points: what risk_sentence reads (built once per model)."""
    return risk.drop_duplicates(["variant", "score"]).set_index(["variant", "score"])


def risk_sentence(curves: pd.DataFrame, picked_variant: str) -> str:
    """The risk-coverage figure's take-away for one picked set, against the clean images (``curves``: risk_curves)."""
    if ("clean", "entropy") in curves.index and (picked_variant, "entropy") in curves.index:
        clean, attacked = curves.loc[("clean", "entropy")], curves.loc[(picked_variant, "entropy")]
        return (f"Take-away: E-AURC (entropy; 0 = the oracle) is {clean['e_aurc']:.3f} "
                f"[{clean['e_aurc_low']:.3f}, {clean['e_aurc_high']:.3f}] on the N = {_int(clean['n_images'])} "
                f"clean images and {attacked['e_aurc']:.3f} [{attacked['e_aurc_low']:.3f}, "
                f"{attacked['e_aurc_high']:.3f}] with {picked_variant} among the N = {_int(attacked['n_images'])} "
                f"(random order: AURC {attacked['random_aurc']:.3f}).")
    return "Take-away: no risk–coverage curve for this pick."


def figure_sentences(points: pd.DataFrame, detection: pd.DataFrame, risk: pd.DataFrame, default: str,
                     eps_attack: str, eps_label: str) -> dict[str, str]:
    """One sentence per figure of the detection dashboard, each with its N and 95% interval, written
    from the stored rows (``points``: chart_data.detection_points of the model; ``detection``: its
    detection rows; ``default``: the positives the ROC and risk figures show first)."""
    confident = points[(points["kind"] == "adversarial") & points["variant"].str.endswith(" confident")]
    out = {}
    if confident.empty:
        out["auroc"] = "Take-away: no confident adversarial to flag."
    else:
        spans = []
        for score, name in (("entropy", "entropy"), ("max_prob", "the max-probability baseline")):
            of = confident[confident["score"] == score].sort_values(["auroc", "variant"])
            lo, hi = of.iloc[0], of.iloc[-1]
            spans.append(f"{name} from {_auroc_with(lo)} ({lo['variant']}) to {_auroc_with(hi)} ({hi['variant']})")
        out["auroc"] = (f"Take-away: on the {confident['variant'].nunique()} confident adversarial sets "
                        f"({_int(confident['n_adv'].min())}–{_int(confident['n_adv'].max())} each, against N = "
                        f"{_int(confident['n_clean'].max())} clean-correct images), AUROC runs for {spans[0]}, and "
                        f"for {spans[1]}.")
    out["roc"] = roc_sentence(points, default)
    budgets = detection[(detection["attack"] == eps_attack) & (detection["operating_point"] == BUDGET)
                        & (detection["reference"] == "adversarial") & (detection["score"] == "entropy")
                        & (detection["n_adv"] > 0)]
    apart = int((budgets["gap_low"] > 0).sum())
    out["eps"] = (f"Take-away: the per-image entropy gap adversarial − noise control has a 95% interval above 0 at "
                  f"{apart} of {len(budgets)} {eps_label} budgets"
                  + (f" ({_int(budgets['n_adv'].min())}–{_int(budgets['n_adv'].max())} images each)." if len(budgets)
                     else "."))
    out["risk"] = risk_sentence(risk_curves(risk), default)
    return out


OOD_SHOWN = 24  # OOD images pictured on the detection page, evenly spaced over the set


def ood_section(run: Run) -> dict[str, Any] | None:
    """The detection page's out-of-distribution block: per model, do its entropy and mutual information
    flag the OOD images (positives, all of them) against its clean-correct test images better than the
    softmax (max_prob, dropout off)? Each AUROC with its interval and the paired Δ, with both N; and
    ``OOD_SHOWN`` of the images with the first model's prediction (dropout off) and MC entropy, the share
    it takes with a softmax probability >= kappa, and the class it gives most of them. None for a run
    without an OOD set."""
    info = run.manifest.get("ood")
    rows = run.detection[run.detection["reference"] == OOD]
    if not info or rows.empty:
        return None
    label_of, names = labels(run), run.class_names
    models = []
    for key in run.model_keys:
        mine = rows[rows["model"] == key].set_index("score")
        if not {"entropy", "mutual_info", "max_prob"} <= set(mine.index):
            continue
        scores = {}
        for score in ("entropy", "mutual_info"):
            r = mine.loc[score]
            scores[score] = {"auroc": _auroc_with(r), "verdict": versus(r["delta_low"], r["delta_high"]),
                             "delta": f"{r['delta_vs_baseline']:+.3f} [{r['delta_low']:+.3f}, {r['delta_high']:+.3f}]"}
        b, e = mine.loc["max_prob"], mine.loc["entropy"]
        models.append({"label": label_of[key], "n_ood": _int(e["n_adv"]), "n_clean": _int(e["n_clean"]),
                       "max_prob": _auroc_with(b), **scores,
                       "fpr": float(e["fpr_at_95tpr"]), "fpr_baseline": float(b["fpr_at_95tpr"])})
    first = run.ood[run.ood["model"] == run.model_keys[0]].sort_values("image_id")
    shown = first.iloc[np.unique(np.linspace(0, len(first) - 1, min(OOD_SHOWN, len(first))).round().astype(int))]
    size = run.manifest["tiles"]
    # A no-break space keeps "H 0.42" on one line under a narrow tile.
    pictures = [{"tile": tiles.tile(r.sheet, r.sheet_col, r.sheet_row, size["tile_width"], size["tile_height"]),
                 "caption": f"{names[int(r.plain_pred)]} · H\u00a0{r.entropy:.2f}",
                 "alt": f"OOD image {int(r.image_id)}: taken for {names[int(r.plain_pred)]}, entropy {r.entropy:.2f}"}
                for r in shown.itertuples()]
    common = first["plain_pred"].value_counts()
    return {"label": info["label"], "n": int(info["n_images"]), "dataset": info["dataset"], "models": models,
            "pictures": pictures, "first": label_of[run.model_keys[0]],
            "confident": float((first["max_prob"] >= run.config.attacks.kappa).mean()),
            "common": names[int(common.index[0])], "common_share": float(common.iloc[0] / len(first))}


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
        n_clean = int(points["n_clean"].max())  # every test image's clean-correct ones; a subset attack has fewer
        fewer = sorted({int(n) for n in points["n_clean"]} - {n_clean})
        negatives = f"N = {n_clean} clean-correct test images" + (
            f" ({', '.join(map(str, fewer))} for the attacks run on a subset)" if fewer else "")
        default = next((v for v in points["variant"] if v.endswith(" confident")), points["variant"].iloc[0])
        eps_label = run.cards[ranking]["label"] if ranking else ""
        eps_clean = points.loc[points["variant"].str.startswith(f"{eps_label} ε"), "n_clean"]
        n_eps = int(eps_clean.iloc[0]) if len(eps_clean) else n_clean
        roc = chart_data.roc_curve_points(run.roc, key, attack_labels(run))
        eps = chart_data.eps_curve_points(run.detection, key, ranking or "", eps_label)
        risk = chart_data.risk_points(run.risk_coverage, key, attack_labels(run))
        said = figure_sentences(points, run.detection[run.detection["model"] == key], risk, default, ranking or "",
                                eps_label)
        populations = {
            "auroc": _lines(f"negatives: {negatives}; positives: successful adversarials "
                            f"(or their noise controls)" + (f", or all N = {run.manifest['ood']['n_images']} "
                                                            f"out-of-distribution images" if run.manifest.get("ood") else "")
                            + ", N per row in the tooltip. Click a row to pick it.")
            + _lines(said["auroc"]),
            "roc": _lines("the picked positives against the clean-correct test images of their attack (N in the title)")
            + _lines(said["roc"]),
            "eps": [f"successful {eps_label} adversarials at each ε and their noise controls (N per point in the tooltip); "
                    f"ε = 0: the N = {n_eps} clean-correct images", said["eps"]],
            "risk": _lines(f"clean: all N = {len(run.images)} test images; under attack: its test images, "
                           f"{run.config.detection.attacked_share:.0%} met as their adversarial") + _lines(said["risk"])}
        # The ROC and risk-coverage subtitles follow the picked row: their sentences for every adversarial set.
        picked = {"roc": {}, "risk": {}}
        curves = risk_curves(risk)
        for v in points["variant"].unique():
            picked["roc"][v] = [f"ROC curves of {v}", *_lines(roc_sentence(points, v))]
            picked["risk"][v] = [f"Risk–coverage: clean (dashed) and under {v} (solid)", *_lines(risk_sentence(curves, v))]
        spec = charts.detection_dashboard(points, roc, eps, risk, default, populations, eps_label, picked)
        table = points.pivot_table(index=["variant", "kind"], columns="score", sort=False,
                                   values=["auroc", "auroc_low", "auroc_high", "delta_low", "delta_high"])
        rows = []
        for (v, kind), r in table.iterrows():
            n_adv = int(points[points["variant"] == v]["n_adv"].iloc[0])
            rows.append({"variant": v, "kind": kind, "n_adv": n_adv,
                         "scores": [{"auroc": r[("auroc", s)], "low": r[("auroc_low", s)], "high": r[("auroc_high", s)],
                                     "vs": versus(r.get(("delta_low", s), np.nan), r.get(("delta_high", s), np.nan))}
                                    if ("auroc", s) in r.index and r[("auroc", s)] == r[("auroc", s)] else None
                                    for s in charts.SCORE_NAMES]})
        aurc = run.risk_coverage[run.risk_coverage["model"] == key].drop_duplicates(["condition", "score"])
        names = {c: ("clean" if g["attack"].iloc[0] != g["attack"].iloc[0] or g["attack"].iloc[0] is None
                     else chart_data.variant(g["attack"].iloc[0], g["operating_point"].iloc[0],
                                             None if g["eps"].iloc[0] != g["eps"].iloc[0] else float(g["eps"].iloc[0]),
                                             attack_labels(run)))
                 for c, g in aurc.groupby("condition", sort=False)}
        sections.append({**model_section(run, key), "n_clean": n_clean, "rows": rows,
                         "full": points.to_dict("records"),
                         "answer": detection_answer(run.detection, key)[0],
                         "method": "MC dropout" if run.model(key)["method"] == "mc_dropout" else f"the {run.model(key)['label']}'s spread",
                         "takeaway": detection_takeaway(run.detection, run.adaptive, key, run.cards),
                         "aurc": [{"condition": names[c], "n_images": _int(g["n_images"].iloc[0]),
                                   "random_aurc": float(g["random_aurc"].iloc[0]),
                                   "scores": {r.score: {"e_aurc": r.e_aurc, "low": r.e_aurc_low, "high": r.e_aurc_high}
                                              for r in g.itertuples()}}
                                  for c, g in aurc.groupby("condition", sort=False)],
                         "spec": chart_json(spec)})
    return Page(f"{run_dir(run)}/detection.html", "detection.html", {
        "title": f"{run.name}: uncertainty under attack", "run": run_summary(run), "sections": sections,
        "headline": detection_headline(run.detection, run.model_keys, labels(run)),
        "scores": list(charts.SCORE_NAMES), "kappa": kappa, "subsets": subsets(run),
        "adaptive": [run.cards[a] for a in run.attack_names if run.cards[a]["adaptive"]],
        "budget_attacks": _listed([run.cards[a]["label"] for a in run.attack_names
                                   if run.attacks[(run.attacks["attack"] == a)
                                                  & (run.attacks["operating_point"] == BUDGET)].size]) or "no attack",
        "resamples": run.config.detection.resamples, "attacked_share": run.config.detection.attacked_share,
        "passes": run.config.uncertainty.passes, "ood": ood_section(run),
        "overview_spec": chart_json(charts.interval_panels(
            chart_data.delta_rows(run.detection, labels(run), attack_labels(run)),
            [s.replace("_", " ") for s in MC_SCORES], model_colours(run), "ΔAUROC vs max_prob [95%]",
            columns=3, reference=0.0, independent=False))})


def good_bad_page(run: Run) -> Page:
    """Per model, attack and operating point (minimal, confident), one row per class: its most robust
    ("good") and most vulnerable ("bad") clean-correct test images by the attack's ranking column on its
    adversarials at that point (FGSM's smallest flipping epsilon, L-BFGS's L2, IAA's D...; never fooled =
    most robust), as thumbnails. The page opens at the run's ranking attack (``attacks.ranking``) and the
    minimal point; static/good-bad.js switches attack and point by the hash."""
    images = run.images.set_index("image_id")
    names = run.class_names
    thumb = thumb_size(int(run.manifest["tiles"]["tile_width"]))
    ranking = run.ranking
    assert ranking is not None, "good & bad needs a ranking attack"
    kappa = run.config.attacks.kappa
    # Plain dicts, not .loc: the page has thousands of cards, and a pandas lookup per card was most of
    # the build's time.
    label_of = images["label"].astype(int).to_dict()
    original_tile = {int(i): tiles.image_tile(run, r) for i, r in zip(images.index, images.to_dict("records"))}
    adversarial_tile = {(r["model"], r["attack"], r["operating_point"], int(r["image_id"])): tiles.image_tile(run, r)
                        for r in run.tiles[run.tiles["picture"] == "adversarial"].to_dict("records")}

    def card(r: Any, side: str, key: str, attack: str, point: str) -> dict[str, Any]:
        """One thumbnail: the original, its adversarial at ``point`` on hover or focus (where it fools),
        and under it two short lines (so that a row stays aligned under 56-px thumbnails): "4 → 9" (true
        class → the class it becomes) and the ranking figure; or the class and "never"; or, at the
        confident point, "4 → 9" and the wrong class's probability where it fooled without confidence."""
        rank = run.cards[attack]
        column, symbol = rank["ranking_column"], rank["ranking_symbol"]
        image_id = int(r.image_id)
        true = names[label_of[image_id]]
        becomes = names[int(r.adv_pred)]
        adv = adversarial_tile.get((key, attack, point, image_id)) if r.success else None
        if r.success:
            value = float(getattr(r, column))
            said = (f"{true} → {becomes}", f"{symbol} = {value:.3f}",
                    f"#{image_id}: {rank['label']} fools it into {becomes} at {symbol} = {value:.4f}"
                    + (f", with P ≥ {kappa:g}" if point == CONFIDENT else ""))
        elif becomes != true:  # fooled, but never with confidence
            said = (f"{true} → {becomes}", f"P = {r.adv_prob:.2f}",
                    f"#{image_id}: {rank['label']} made it {becomes} at P = {r.adv_prob:.3f} at most, never P ≥ "
                    f"{kappa:g}, within {rank['limit_caption']}")
        else:
            said = (true, "never", f"#{image_id}: {rank['label']} never fooled it within {rank['limit_caption']} "
                                   f"(true class at {r.adv_prob:.3f} there)")
        return {"image_id": image_id, "side": side, "tile": original_tile[image_id], "adversarial": adv,
                "zoom": thumb / int(run.manifest["tiles"]["tile_width"]),
                "becomes": said[0], "label": said[1], "title": said[2],
                "href": f"image.html#id={image_id}&model={key}"}

    def classes_of(key: str, attack: str, point: str) -> list[dict[str, Any]]:
        rows_of = run.attacks[(run.attacks["model"] == key) & (run.attacks["attack"] == attack)
                              & (run.attacks["operating_point"] == point)]
        wrong = rows_of.loc[~rows_of["clean_correct"], "image_id"].map(images["label"]).value_counts().reindex(
            range(len(names)), fill_value=0)
        # Only images the model got right were attacked; compute/ranking.py orders them (one ranking for
        # this page and the activation maps).
        scored = ranked(rows_of, run.cards[attack]["ranking_column"], point, images["label"])
        scored = scored.assign(label=scored["image_id"].map(images["label"]))
        by_id = {int(r.image_id): r for r in rows_of.itertuples(index=False)}
        out = []
        for label, name in enumerate(names):
            rows = scored[scored["label"] == label]
            if rows.empty:
                continue
            robust, fragile = extremes(rows, min(GOOD_BAD_PER_CLASS, len(rows) // 2))
            out.append({"class_name": name, "n_wrong_before": int(wrong[label]), "n_attacked": len(rows),
                        "robust": [card(by_id[i], "robust", key, attack, point) for i in robust],
                        "vulnerable": [card(by_id[i], "vulnerable", key, attack, point) for i in fragile]})
        return out

    order = [ranking] + [a for a in run.attack_names if a != ranking]  # the ranking attack first: the default
    subset = {s["attack"]: s["n_images"] for s in subsets(run)}
    points = {MINIMAL: "minimal", CONFIDENT: f"confident (P ≥ {kappa:g})"}  # short: the switch is one line on a phone
    held = set(zip(run.attacks["attack"], run.attacks["operating_point"]))
    sections = []
    for key in run.model_keys:
        sections.append({**model_section(run, key), "points": points, "attacks": [
            # The minimal point keeps the anchor an attack had before there was a choice of point.
            {"attack": a, "point": point, "anchor": f"{key}-{a}" + ("" if point == MINIMAL else f"-{point}"),
             "card": run.cards[a], "point_label": points[point], "default": a == ranking and point == MINIMAL,
             "subset": subset.get(a), "classes": classes_of(key, a, point)}
            for a in order for point in points if (a, point) in held]})
    return Page(f"{run_dir(run)}/good-bad.html", "good_bad.html", {
        "title": f"{run.name}: good & bad images", "run": run_summary(run), "sections": sections,
        "per_class": GOOD_BAD_PER_CLASS, "ranking": run.cards[ranking]})


def thumb_size(width: int) -> int:
    """Thumbnail width in the grids: twice a small image (28-px digits: 56 px), at most 64 px."""
    return int(min(2 * width, 64))


def map_faithfulness(run: Run) -> list[dict[str, Any]]:
    """Per model, how faithful its maps are, from the map_faithfulness table: PCA's explained variance
    and the ranges over the confident adversarial sets of the 10-NN adversarial-class share in feature
    space and on each map."""
    out = []
    table = run.map_faithfulness
    for key in run.model_keys:
        rows = table[(table["model"] == key) & (table["operating_point"] == CONFIDENT) & (table["n_images"] > 0)]
        if rows.empty:
            continue
        by = {m: rows[rows["method"] == m] for m in ("pca", "tsne")}
        gap = {m: f"{(b['share_map'] - b['share_features']).abs().max():.2f}" for m, b in by.items()}
        out.append({"label": run.model(key)["label"], "explained": float(by["pca"]["explained_variance"].iloc[0]),
                    "n_sets": len(by["pca"]), "n_min": rows["n_images"].min(), "n_max": rows["n_images"].max(),
                    "features": _span(by["pca"]["share_features"]), "tsne": _span(by["tsne"]["share_map"]),
                    "pca": _span(by["pca"]["share_map"]), "tsne_gap": gap["tsne"], "pca_gap": gap["pca"]})
    return out


def n_reference_images(run: Run) -> int:
    """How many training images the feature maps are fitted on (embedding.reference_images, or every
    training image when there are fewer)."""
    return min(run.config.embedding.reference_images, int(run.manifest["dataset"]["n_train_images"]))


def versus(low: float, high: float) -> str:
    """Where a paired 95% interval of ΔAUROC (score − max_prob) lies: "above" 0 (the MC score flags
    better), "below" (the softmax does), or "" (it contains 0, or there is none: max_prob itself)."""
    if low != low or high != high:
        return ""
    return "above" if low > 0 else "below" if high < 0 else ""


def explorer_page(run: Run, data: dict[str, Any]) -> Page:
    """The grid of every test image and the feature map; their data (``data``, explorer_data) is
    data/explorer.js. The lead names the operating point the explorer opens at."""
    point = next((p for p in data["points"] if p["key"] == data["default_point"]), None)  # None: no attack ran
    layout = tiles.layout(run)
    index = {"sheets": layout["original"], "cols": layout["cols"], "per_sheet": layout["per_sheet"],
             "width": layout["width"], "height": layout["height"], "thumb": thumb_size(layout["width"])}
    return Page(f"{run_dir(run)}/explorer.html", "explorer.html", {
        "title": f"{run.name}: explorer", "run": run_summary(run), "index": index,
        "faithfulness": map_faithfulness(run), "n_reference": n_reference_images(run),
        "attacks": [run.cards[a]["label"] for a in run.attack_names],
        "default_point": point and point["label"],
        "shared_default": bool(point) and set(point["attacks"]) >= set(run.attack_names),
        "n_images": int(run.images["image_id"].nunique())})


def minimal_on_budgets(run: Run) -> dict[str, bool]:
    """Per attack: is its minimal point its smallest budget that fools (every successful minimal
    adversarial's epsilon is one of its budgets), rather than a point on the decision boundary? Read
    off the table, so a page never calls a budget "minimal" without saying so."""
    minimal = run.attacks[(run.attacks["operating_point"] == MINIMAL) & run.attacks["success"].astype(bool)]
    out = {}
    for attack in run.attack_names:
        budgets = run.attacks.loc[(run.attacks["attack"] == attack) & (run.attacks["operating_point"] == BUDGET), "eps"].unique()
        eps = minimal.loc[minimal["attack"] == attack, "min_eps"].dropna().to_numpy()
        out[attack] = bool(len(budgets) and len(eps) and np.isin(np.round(eps, 6), np.round(budgets, 6)).all())
    return out


def image_page(run: Run, chunks: list[dict[str, Any]]) -> Page:
    """The per-image view: one page, the image chosen by its URL's #id=N, its data from ``chunks``."""
    conditions = run.conditions
    adversarial = [c for c in conditions if not c.startswith(NOISE_PREFIX)]  # those with class probabilities
    ids = run.images["image_id"].tolist()  # images-table order: an id's position is its tile's
    return Page(f"{run_dir(run)}/image.html", "image.html", {
        "title": f"{run.name}: image", "run": run_summary(run),
        "index": {"chunks": chunks, "ids": ids, "labels": run.images["label"].astype(int).tolist(), "conditions": conditions,
                  "condition_labels": [condition_label(run, c) for c in conditions], "attacks": run.attack_names,
                  "attack_points": run.attack_points, "kappa": run.config.attacks.kappa,
                  "cards": run.cards, "limit_captions": limit_captions(run), "budgets": minimal_on_budgets(run),
                  "class_names": run.class_names, "models": [model_section(run, k) for k in run.model_keys],
                  "tiles": tiles.layout(run),
                  "fields": {"conditions": image_data.CONDITION_FIELDS, "attacks": image_data.ATTACK_FIELDS,
                             "activations": image_data.ACTIVATION_FIELDS}},
        "probs_spec": chart_json(charts.image_probs_chart(run.class_names, condition_colours(run, adversarial))),
        "pass_histogram_spec": chart_json(charts.pass_histogram_chart(
            [condition_label(run, c) for c in adversarial], run.config.uncertainty.passes))})


def findings_page(run: Run) -> Page:
    """The seed's claims checked, from findings.parquet (compute/findings.py): per claim its sentence,
    the verdict per model with N and the intervals it is read off, and the figure that shows it. Claim
    (a) so far: confidence against accuracy, with a line and the bound's shape fitted."""
    table = run.findings
    label_of = labels(run)
    a = table[table["claim"] == "confidence_accuracy"]
    clean = a[a["attack"].isna()]
    rows = []
    mc = [k for k in run.model_keys if run.model(k)["method"] == "mc_dropout"]  # claim (a) is about MC dropout
    for key in mc:
        m = clean[clean["model"] == key].set_index("measure")
        if m.empty:
            continue
        rows.append({"label": label_of[key], "n": int(m.loc["pearson", "n"]),
                     **{name: m.loc[name].to_dict() for name in m.index}})
    attacked = []
    for (key, attack, point), g in a[a["attack"].notna()].groupby(["model", "attack", "operating_point"], sort=False):
        m = g.set_index("measure")
        attacked.append({"label": label_of[key], "attack": run.cards[attack]["label"], "point": point,
                         "n": int(m.loc["pearson", "n"]), **{name: m.loc[name].to_dict() for name in m.index}})
    points, fits = chart_data.confidence_fit_points(run.uncertainty[run.uncertainty["model"].isin(mc)], run.findings,
                                                    {k: label_of[k] for k in mc})
    spec = chart_json(charts.confidence_fits(points, fits, [label_of[k] for k in mc])) if rows else None
    return Page(f"{run_dir(run)}/findings.html", "findings.html", {
        "title": f"{run.name}: findings", "run": run_summary(run), "rows": rows, "attacked": attacked,
        "claim": SEED_CLAIMS["confidence_accuracy"], "spec": spec, "resamples": run.config.detection.resamples,
        "fits": tuple(chart_data.FITS), "min_images": MIN_IMAGES,
        "links_a": [{"label": label_of[k], "href": explorer_link(k)} for k in mc],
        "b": claim_b(run, label_of), "c": claim_c(run, label_of), "d": claim_d(run, label_of),
        "e": claim_e(run, label_of), "f": claim_f(run, label_of),
        "questions": QUESTIONS, "quote_b": SEED_CLAIMS["iaa"]})


# The seed's claims as it stated them, quoted on the findings page.
SEED_CLAIMS = {"confidence_accuracy": "Confidence and accuracy are linearly dependent.",
               "iaa": "IAA is imperceptible, and more robust than FGSM and L-BFGS."}
# The questions the other cards answer (not the seed's words, so not quoted).
QUESTIONS = {"mc_detects": "Does MC-dropout uncertainty flag adversarial images better than the softmax alone?",
             "adaptive_evades": "Does an attacker who knows MC dropout get past it?",
             "mc_flags_ood": "Does MC-dropout uncertainty flag images of no class the model knows better than the softmax alone?",
             "equal_cost": "The seed holds that MC dropout is cheaper than an ensemble, with similar benefits. Is it?"}
MEASURE_LABELS = {"l0": "L0 (pixels changed)", "l2": "L2", "linf": "L∞", "perceptual_distance": "D (IAA's perceptual distance)",
                  "ssim": "SSIM (1 = identical)"}
TRANSFORM_LABELS = {"jpeg75": "JPEG, quality 75", "gaussian0.05": "Gaussian noise, σ = 0.05",
                    "median3": "3×3 median filter", "transfer": "transfer to another model"}
VERDICT_ORDER = ("holds", "does not hold", "not distinguishable")


def measure_label(measure: str, label_of: dict[str, str]) -> str:
    """How the pages name a findings measure: a distortion (L0, SSIM, ...), a transformation, "transfer to
    <model>" for ``transfer-<model key>``, else a score ("mutual info")."""
    if measure in MEASURE_LABELS or measure in TRANSFORM_LABELS:
        return MEASURE_LABELS.get(measure) or TRANSFORM_LABELS[measure]
    if measure.startswith("transfer-"):
        key = measure[len("transfer-"):]
        return f"transfer to {label_of.get(key, key)}"
    return measure.replace("_", " ")
MIXED = ("never fails", "never holds", "mixed")  # a measure whose comparisons disagree, as the headline says it


def n_range(n: pd.Series) -> str:
    """The images counted by a set of findings rows: "500", or "154–487" when the rows differ."""
    n = n.astype(int)
    return f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}"


def verdict_cell(rows: pd.DataFrame, label_of: dict[str, str]) -> dict[str, Any]:
    """What one cell of a verdict grid says about ``rows`` (one per model, or per model pair): each verdict
    with how many rows have it and which models, and the range of N."""
    answers = []
    for v in VERDICT_ORDER:
        hit = rows[rows["verdict"] == v]
        if len(hit):
            answers.append({"verdict": v, "count": len(hit),
                            "models": ", ".join(dict.fromkeys(label_of[k] for k in hit["model"]))})
    return {"answers": answers, "total": len(rows), "n": n_range(rows["n"])}


def verdict_grid(rows: pd.DataFrame, row_key, row_labels: dict[str, str], column_key,
                 column_labels: dict[Any, str], label_of: dict[str, str]) -> dict[str, Any]:
    """A verdict grid: ``row_key(row)`` and ``column_key(row)`` place each finding row (of every model);
    each cell sums its rows (``verdict_cell``); labels in display order, empty cells left blank."""
    rows = rows.assign(_r=[row_key(r) for r in rows.itertuples()], _c=[column_key(r) for r in rows.itertuples()])
    columns = [c for c in column_labels if (rows["_c"] == c).any()]
    out = []
    for r, label in row_labels.items():
        mine = rows[rows["_r"] == r]
        if mine.empty:
            continue
        out.append({"label": label, "cells": [verdict_cell(mine[mine["_c"] == c], label_of) if (mine["_c"] == c).any()
                                              else None for c in columns]})
    return {"columns": [column_labels[c] for c in columns], "rows": out}


def explorer_link(key: str, point: str | None = None, prefix: str = "", **outcomes: str) -> str:
    """The explorer at ``prefix`` (its run's folder from the page linking; "" from a page of the run),
    model ``key``, at ``point``, filtered to the attacks' ``outcomes`` (attack -> outcome name)."""
    q = {"model": key, **({"point": point} if point else {}), **{f"outcome-{a}": o for a, o in outcomes.items()}}
    return f"{prefix}explorer.html#" + urlencode(q)


def claim_b(run: Run, label_of: dict[str, str]) -> dict[str, Any] | None:
    """Claim (b)'s card: IAA against FGSM and L-BFGS, perceptibility and survival, paired per image."""
    table = run.findings
    paired = table[table["claim"].isin(["iaa_imperceptible", "iaa_robust"]) & table["baseline"].notna()]
    if paired.empty:
        return None
    columns = {(b, p): f"vs {run.cards[b]['label']}, {p}" for p in (MINIMAL, CONFIDENT) for b in SEED_BASELINES
               if b in run.cards}

    def column(r):
        return (r.baseline, r.operating_point)
    seen = paired[paired["claim"] == "iaa_imperceptible"]
    robust = paired[paired["claim"] == "iaa_robust"]

    def comparison(r):  # the row's label in the figure: its column's in the grid
        return columns[column(r)]
    perceptible = chart_data.comparison_rows(table, "iaa_imperceptible", label_of, MEASURE_LABELS, comparison)
    # The figure has a panel per transfer target (a model's two targets would share a row in one panel).
    panels = {m: measure_label(m, label_of) for m in [*(t for t in TRANSFORM_LABELS if t != "transfer"),
                                                      *(f"transfer-{k}" for k in run.model_keys)]}
    survive = chart_data.comparison_rows(table, "iaa_robust", label_of, panels, comparison)
    means = table[table["claim"].isin(["iaa_imperceptible", "iaa_robust"]) & table["baseline"].isna()
                  & table["attack"].isin([SUBJECT, *SEED_BASELINES])]
    mean_rows = []
    for (claim, measure, key, point), g in means.groupby(["claim", "measure", "model", "operating_point"], sort=False):
        mean_rows.append({"measure": measure_label(measure, label_of), "model": label_of[key], "point": point,
                          "attacks": {run.cards[a]["label"]: r._asdict() for a, r in
                                      zip(g["attack"], g[["value", "low", "high", "n"]].itertuples(index=False))}})
    colours = model_colours(run)
    return {
        "perceptible": verdict_grid(seen, lambda r: r.measure, MEASURE_LABELS, column, columns, label_of),
        "robust": verdict_grid(robust, lambda r: "transfer" if r.measure.startswith("transfer-") else r.measure,
                               TRANSFORM_LABELS, column, columns, label_of),
        "spec_perceptible": chart_json(charts.interval_panels(perceptible, list(MEASURE_LABELS.values()), colours,
                                                              "IAA − baseline, mean over images both fooled")),
        "spec_robust": chart_json(charts.interval_panels(survive, list(panels.values()), colours,
                                                         "IAA − baseline, share still fooling")),
        "attacks": [run.cards[a]["label"] for a in (SUBJECT, *SEED_BASELINES) if a in run.cards],
        "means": mean_rows,
        "links": [{"label": label_of[k], "href": explorer_link(k, MINIMAL, **{a: "fooled" for a in (SUBJECT, *SEED_BASELINES)
                                                                                   if a in run.cards})}
                  for k in run.model_keys],
    }


def claim_c(run: Run, label_of: dict[str, str]) -> dict[str, Any] | None:
    """Claim (c)'s card: each MC score's AUROC against the softmax's, paired, per attack and point."""
    rows = run.findings[run.findings["claim"] == "mc_detects"]
    if rows.empty:
        return None
    attacks = {(a, p): f"{run.cards[a]['label']}, {p}" for a in run.attack_names for p in (MINIMAL, CONFIDENT)}
    scores = {s: s.replace("_", " ") for s in MC_SCORES}

    def comparison(r):
        return attacks[(r.attack, r.operating_point)]
    spec_rows = chart_data.comparison_rows(rows, "mc_detects", label_of, scores, comparison)
    return {"question": QUESTIONS["mc_detects"], "link_attack": run.cards[run.attack_names[0]]["label"],
            "grid": verdict_grid(rows, lambda r: (r.attack, r.operating_point), attacks, lambda r: r.measure, scores,
                                 label_of),
            "spec": chart_json(charts.interval_panels(spec_rows, list(scores.values()), model_colours(run),
                                                      "AUROC(score) − AUROC(softmax)")),
            "links": [{"label": label_of[k], "href": explorer_link(k, CONFIDENT, **{run.attack_names[0]: "fooled"})}
                      for k in run.model_keys]}


def claim_d(run: Run, label_of: dict[str, str]) -> dict[str, Any] | None:
    """Claim (d)'s card: the adaptive attacker's AUROC against its non-adaptive twin's, paired."""
    rows = run.findings[run.findings["claim"] == "adaptive_evades"]
    if rows.empty:
        return None
    budgets = {e: f"ε = {e:g}" for e in sorted(rows["eps"].unique())}
    scores = {s: s.replace("_", " ") for s in SCORES}
    first = rows.iloc[0]
    pair = f"{run.cards[first['attack']]['label']} against {run.cards[first['baseline']]['label']}"

    def comparison(r):
        return budgets[r.eps]
    spec_rows = chart_data.comparison_rows(rows, "adaptive_evades", label_of, scores, comparison)
    top = max(budgets)
    return {"question": QUESTIONS["adaptive_evades"], "pair": pair,
            "grid": verdict_grid(rows, lambda r: r.eps, budgets, lambda r: r.measure, scores, label_of),
            "spec": chart_json(charts.interval_panels(spec_rows, list(scores.values()), model_colours(run),
                                                      "AUROC(adaptive) − AUROC(non-adaptive)", columns=2)),
            "links": [{"label": label_of[k], "href": explorer_link(k, f"eps{top:g}", **{first["attack"]: "fooled"})}
                      for k in run.model_keys]}


def claim_f(run: Run, label_of: dict[str, str]) -> dict[str, Any] | None:
    """Claim (f)'s card: each MC score's AUROC against the softmax's on the out-of-distribution images,
    paired, per model (from the detection rows of reference ``ood``)."""
    rows = run.findings[run.findings["claim"] == "mc_flags_ood"]
    if rows.empty or not run.manifest.get("ood"):
        return None
    name = attack_labels(run)[OOD]
    scores = {s: s.replace("_", " ") for s in MC_SCORES}
    short = f"OOD: {run.manifest['ood']['dataset']}"  # the figure's row label: short, for a phone's width
    spec_rows = chart_data.comparison_rows(rows, "mc_flags_ood", label_of, scores, lambda r: short)
    clean = run.detection[(run.detection["reference"] == OOD)]
    return {"question": QUESTIONS["mc_flags_ood"], "label": run.manifest["ood"]["label"],
            "n": int(run.manifest["ood"]["n_images"]), "n_clean": n_range(clean["n_clean"]),
            "grid": verdict_grid(rows, lambda r: r.attack, {OOD: name}, lambda r: r.measure, scores, label_of),
            # The claim is about MC dropout: the legend lists the models drawn, not the ensembles.
            "spec": chart_json(charts.interval_panels(spec_rows, list(scores.values()),
                                                      {k: v for k, v in model_colours(run).items()
                                                       if k in set(spec_rows["model"])},
                                                      "AUROC(score) − AUROC(softmax)"))}


def claim_e(run: Run, label_of: dict[str, str]) -> dict[str, Any] | None:
    """Claim (e)'s card: the methods table (compute/equal_cost.py) drawn and tabled, and the verdict on
    "more efficient with similar benefits", per ensemble and overall, from findings.parquet."""
    methods = run.methods
    rows = run.findings[run.findings["claim"] == "mc_efficient"]
    if methods.empty or rows.empty:
        return None
    methods = methods.assign(method_label=methods["method"].map(METHOD_LABELS))
    colours = dict(zip(METHOD_LABELS.values(), METHOD_COLOURS))
    reference = methods[(methods["model"] == methods["reference"].iloc[0])].iloc[0]
    per = []
    for key, g in rows.groupby("model", sort=False):
        m = g.set_index("measure")
        row = methods[methods["model"] == key].iloc[0]
        better = [MEASURE_NAMES[n] for n in ("accuracy", "nll", "ece")
                  if m.loc[f"{n}_vs_mc", "verdict"] == "does not hold"]
        # distinguishably worse than MC dropout: the paired interval on MC dropout's side of 0
        worse = [MEASURE_NAMES[n] for n, sign in (("accuracy", 1), ("nll", -1), ("ece", -1))
                 if (m.loc[f"{n}_vs_mc", "high"] < 0 if sign > 0 else m.loc[f"{n}_vs_mc", "low"] > 0)]
        at_m = methods[(methods["model"] == reference["model"]) & (methods["passes"] == row["passes"])]
        per.append({"label": label_of[key], "verdict": m.loc["overall", "verdict"], "better": better, "worse": worse,
                    "images": (int(reference["train_images"]), int(row["train_images"])),
                    "time_ratio_m": at_m["seconds_per_image"].iloc[0] / row["seconds_per_image"] if len(at_m) else None,
                    "train_ratio": m.loc["train_images_ratio", "value"],
                    "time_ratio": reference["seconds_per_image"] / row["seconds_per_image"],
                    "n": int(m.loc["overall", "n"]), "row": row.to_dict()})
    verdicts = {p["verdict"] for p in per}
    overall = verdicts.pop() if len(verdicts) == 1 else "partly"
    transfer = []
    det = run.detection[(run.detection["reference"] == "transfer") & (run.detection["score"] == "entropy")]
    for (key, attack, point), made in run.transfer.groupby(["model", "attack", "operating_point"], sort=False):
        attacked = run.attacks[(run.attacks["model"] == key) & (run.attacks["attack"] == attack)
                               & (run.attacks["operating_point"] == point) & run.attacks["clean_correct"]]
        both = made[made["member_success"] & made["image_id"].isin(attacked["image_id"])]
        fooled = int(both["fooled"].sum())
        low, high = wilson(fooled, len(both))
        row = det[(det["model"] == key) & (det["attack"] == attack) & (det["operating_point"] == point)]
        transfer.append({"label": label_of[key], "attack": run.cards[attack]["label"], "point": point,
                         "positives": int(row["n_adv"].iloc[0]) if len(row) else 0,
                         "delta": row["delta_vs_baseline"].iloc[0] if len(row) else None,
                         "delta_low": row["delta_low"].iloc[0] if len(row) else None,
                         "delta_high": row["delta_high"].iloc[0] if len(row) else None,
                         "made": len(both), "fooled": fooled, "rate": fooled / len(both) if len(both) else None,
                         "low": low, "high": high, "n_clean": int(row["n_clean"].iloc[0]) if len(row) else 0,
                         "auroc": row["auroc"].iloc[0] if len(row) else None,
                         "auroc_low": row["auroc_low"].iloc[0] if len(row) else None,
                         "auroc_high": row["auroc_high"].iloc[0] if len(row) else None})
    return {"rows": methods.to_dict("records"), "per": per, "verdict": overall, "reference": reference.to_dict(),
            "transfer": transfer,
            "spec": chart_json(charts.equal_cost(chart_data.equal_cost_rows(methods), colours)),
            "members": run.config.uncertainty.members, "passes": run.config.uncertainty.passes,
            "ensemble_images": run.config.uncertainty.ensemble_images}


MEASURE_NAMES = {"accuracy": "accuracy", "nll": "NLL", "ece": "ECE"}
# The equal-cost card's method colours: Paul Tol's muted indigo, green and purple, none of them a model's colour
# (contract.MODEL_COLOURS), so that a method is never read as one dropout rate.
METHOD_COLOURS = ("#332288", "#117733", "#AA4499")


STANDARD_EPS = (0.1, 0.3)
LEADING_SCORE = "entropy"  # the overview's one MC score (the predictive entropy), fixed before any result is seen  # RobustBench's MNIST L∞ budgets; a run without them shows its two largest shared ones


def _cell(value: float | None, text: str, href: str, title: str = "") -> dict[str, Any]:
    """One number of the overview's table: what it shows, what it sorts by (a missing one sorts last), its link."""
    ok = value is not None and np.isfinite(value)
    return {"text": text, "sort": f"{value:.6g}" if ok else "", "href": href, "title": title}


def leaderboard(run: Run) -> dict[str, Any]:
    """The overview's RobustBench-style table: one row per model, each number linked to the view behind it.
    Columns: clean accuracy; accuracy under FGSM (the robustness table) and PGD (its budget rows over its
    image subset, wrong-before images counted wrong) at the standard budgets; the median smallest flipping
    ε (FGSM, the clean-correct images, a failure counted as beyond the search); the median minimal L2
    (L-BFGS's successes); the detection Δ of ``LEADING_SCORE`` against the softmax at FGSM's confident
    point (one score fixed in advance, never the best of several picked afterwards: the findings page has
    every score); and the adaptive attacker's Δ for that score at its largest budget."""
    base = run_dir(run)
    att, label_of = run.attacks, labels(run)
    fgsm = run.robustness
    pgd = att[(att["attack"] == "pgd") & (att["operating_point"] == BUDGET)] if "pgd" in run.attack_names else att.iloc[0:0]
    shared = sorted(set(fgsm["eps"]) & set(pgd["eps"])) if len(pgd) else sorted(set(fgsm["eps"]) - {0.0})
    budgets = [e for e in STANDARD_EPS if e in shared] or shared[-2:]
    truth = run.images.set_index("image_id")["label"]
    columns = ["clean accuracy"] + [f"accuracy under FGSM ε = {e:g}" for e in budgets] + (
        [f"accuracy under PGD ε = {e:g}" for e in budgets] if len(pgd) else []) + [
        "median smallest flipping ε (FGSM)", "median minimal L2 (L-BFGS)",
        f"AUROC Δ, {LEADING_SCORE.replace('_', ' ')} − softmax, FGSM confident [95%]",
        "adaptive AUROC Δ, EOT-PGD − PGD [95%]"]
    rows = []
    for key in run.model_keys:
        m = run.model(key)
        cells = [_cell(m["accuracy"], f"{m['accuracy']:.1%}", f"{base}/uncertainty.html#{key}",
                       f"{run.manifest['dataset']['n_test_images']} test images, dropout off")]
        mine = fgsm[fgsm["model"] == key].set_index("eps")
        for e in budgets:
            r = mine.loc[e] if e in mine.index else None
            cells.append(_cell(None if r is None else r["accuracy"], "–" if r is None else f"{r['accuracy']:.1%}",
                               explorer_link(key, f"eps{e:g}", f"{base}/"),
                               "" if r is None else f"{int(r['n_images'])} test images"))
        if len(pgd):
            for e in budgets:
                g = pgd[(pgd["model"] == key) & np.isclose(pgd["eps"], e)]
                acc = float((g["adv_pred"].to_numpy() == truth.loc[g["image_id"]].to_numpy()).mean()) if len(g) else None
                cells.append(_cell(acc, "–" if acc is None else f"{acc:.1%}",
                                   explorer_link(key, f"eps{e:g}", f"{base}/"),
                                   f"{len(g)} test images (PGD's evenly spaced subset)"))
        ranked = att[(att["model"] == key) & (att["attack"] == "fgsm") & (att["operating_point"] == MINIMAL)
                     & att["clean_correct"]]
        if len(ranked):
            eps = np.where(ranked["success"], ranked["min_eps"].astype(float), np.inf)
            med = float(np.median(eps))
            cells.append(_cell(med, f"{med:.3f}" if np.isfinite(med) else "beyond the search",
                               f"{base}/good-bad.html", f"{len(ranked)} clean-correct images"))
        else:
            cells.append(_cell(None, "–", f"{base}/attacks.html"))
        l2 = att[(att["model"] == key) & (att["attack"] == "lbfgs") & (att["operating_point"] == MINIMAL) & att["success"]]["l2"]
        cells.append(_cell(float(l2.median()) if len(l2) else None, f"{l2.median():.2f}" if len(l2) else "–",
                           f"{base}/attacks.html#{key}-lbfgs", f"{len(l2)} successful L-BFGS adversarials"))
        det = run.detection
        d = det[(det["model"] == key) & (det["attack"] == "fgsm") & (det["operating_point"] == CONFIDENT)
                & (det["reference"] == "adversarial") & (det["score"] == LEADING_SCORE) & det["delta_vs_baseline"].notna()]
        lead = d.iloc[0] if len(d) else None
        cells.append(_cell(None if lead is None else lead["delta_vs_baseline"],
                           "–" if lead is None else f"{lead['delta_vs_baseline']:+.3f} [{lead['delta_low']:+.3f}, "
                                                    f"{lead['delta_high']:+.3f}]",
                           f"{base}/detection.html#{key}",
                           "" if lead is None else f"FGSM confident: {int(lead['n_adv'])} adversarials against "
                                                   f"{int(lead['n_clean'])} clean-correct images"))
        ad = run.adaptive
        ad = ad[(ad["model"] == key) & (ad["score"] == LEADING_SCORE)]
        ad = ad[ad["delta"].notna()]
        top = ad.loc[ad["eps"].idxmax()] if len(ad) else None
        cells.append(_cell(None if top is None else top["delta"],
                           "–" if top is None else f"{top['delta']:+.3f} [{top['delta_low']:+.3f}, {top['delta_high']:+.3f}]",
                           f"{base}/findings.html#adaptive",
                           "" if top is None else f"{run.cards[top['attack']]['label']} against "
                                                  f"{run.cards[top['baseline']]['label']}, ε = {top['eps']:g}, "
                                                  f"{int(top['n_clean'])} images"))
        rows.append({"label": label_of[key], "key": key, "cells": cells})
    return {"columns": columns, "rows": rows, "n_test": run.manifest["dataset"]["n_test_images"],
            "n_pgd": int(pgd.groupby("model")["image_id"].nunique().max()) if len(pgd) else 0}


HEADLINES = {  # claim -> the sentence's subject: the overview's candidates
    "confidence_accuracy": "Confidence and accuracy are linearly dependent",
    "iaa_imperceptible": "IAA is less perceptible than FGSM and L-BFGS",
    "iaa_robust": "IAA's adversarials survive more often than FGSM's and L-BFGS's",
    "mc_detects": "An MC-dropout score flags adversarials better than the softmax",
    "adaptive_evades": "Knowing the defence lowers detection",
    "mc_flags_ood": "An MC-dropout score flags out-of-distribution images better than the softmax",
}
SECTIONS = {"confidence_accuracy": "confidence-accuracy", "iaa_imperceptible": "iaa", "iaa_robust": "iaa",
            "mc_detects": "detection", "adaptive_evades": "adaptive", "mc_flags_ood": "ood"}


def headline(run: Run, count: int = 3) -> list[dict[str, Any]]:
    """The overview's headline: per claim, its verdict by measure (L0, JPEG-75, entropy, ...: the one
    verdict all its comparisons share; else "never holds" or "never fails" when one side never comes up,
    or "mixed"), the number of comparisons and their N; the ``count`` claims with the largest share of
    comparisons decided (holds or does not hold, rather than not distinguishable) first."""
    f = run.findings
    label_of = labels(run)
    claims = {"confidence_accuracy": f[(f["claim"] == "confidence_accuracy") & f["attack"].isna()
                                       & (f["measure"] == "r2_gap")]}
    for claim in ("iaa_imperceptible", "iaa_robust", "mc_detects", "adaptive_evades", "mc_flags_ood"):
        claims[claim] = f[(f["claim"] == claim) & f["baseline"].notna()]
    out = []
    for claim, rows in claims.items():
        if rows.empty:
            continue
        measure = rows["measure"].where(~rows["measure"].str.startswith("transfer-"), "transfer")
        by = {}  # verdict (or "mixed") -> the measures' labels
        for m, verdicts in rows["verdict"].groupby(measure, sort=False):
            label = "" if claim == "confidence_accuracy" else measure_label(m, label_of)
            seen = set(verdicts)
            word = (verdicts.iloc[0] if len(seen) == 1 else "never holds" if "holds" not in seen
                    else "never fails" if "does not hold" not in seen else "mixed")
            by.setdefault(word, []).append(label)
        decided = rows["verdict"].isin(VERDICT_ORDER[:2]).mean()
        subject = HEADLINES[claim]
        if claim == "mc_flags_ood" and run.manifest.get("ood"):
            subject = f"An MC-dropout score flags {run.manifest['ood']['label']} (out of distribution) better than the softmax"
        out.append({"subject": subject, "by": [(v, by[v]) for v in (*VERDICT_ORDER, *MIXED) if v in by],
                    "total": len(rows), "decided": decided, "n": n_range(rows["n"]),
                    "models": len(set(rows["model"]) & set(label_of)),
                    "href": f"{run_dir(run)}/findings.html#{SECTIONS[claim]}"})
    out.sort(key=lambda h: (-h["decided"], -h["total"]))
    return out[:count]


def runs_curve(runs: list[Run]) -> tuple[Any, str]:
    """The overview's robustness curves, every run side by side on shared axes (accuracy under its ranking
    attack against ε, all test images, wrong before the attack counted wrong), and who is counted; None
    when no run has one."""
    ranked = [r for r in runs if r.ranking and not r.robustness.empty]
    if not ranked:
        return None, ""
    points = pd.concat([chart_data.robustness_points(r.robustness, labels(r)).assign(run=r.name) for r in ranked],
                       ignore_index=True)
    names = list(dict.fromkeys(label for r in ranked for label in labels(r).values()))
    attacks = {r.cards[r.ranking]["label"] for r in ranked}
    counted = "; ".join(f"{r.name}: all N = {len(r.images)} test images" for r in ranked)
    return chart_json(charts.robustness_curve(points, attacks.pop() if len(attacks) == 1 else "the ranking attack",
                                              dict(zip(names, model_colours_of(len(names)))),
                                              [r.name for r in ranked])), counted


def index_page(runs: list[Run]) -> Page:
    """The overview: per run its headline findings and the models' table, the runs' robustness curves side
    by side, then the runs' details."""
    curve, counted = runs_curve(runs)
    ensembles = any(m["method"] != "mc_dropout" for r in runs for m in r.models)
    return Page("index.html", "index.html", {"title": "robustviz", "curve": curve, "curve_counted": counted,
                                            "ensembles": ensembles, "runs": [
        {**run_summary(r), "headline": headline(r), "board": leaderboard(r) if r.attack_names else None} for r in runs]})


def gather_pages(runs: list[Run]) -> tuple[list[Page], dict[str, Any]]:
    """Every page of the site in a stable order, and its data files (path -> (callback, records)):
    the per-image view's chunks and the explorer's data."""
    pages = [index_page(runs)]
    data: dict[str, Any] = {}
    for run in runs:
        explorer = explorer_data.explorer_data(run)
        pages += [findings_page(run), uncertainty_page(run), provenance_page(run), explorer_page(run, explorer)]
        if run.attack_names:
            pages += [attacks_page(run), detection_page(run)]
        if run.ranking:
            pages.append(good_bad_page(run))
        chunks, files = image_data.image_chunks(run, run_dir(run))
        data.update({path: ("robustviz.imageChunk", records) for path, records in files.items()})
        data[f"{run_dir(run)}/data/explorer.js"] = ("robustviz.explorerData", explorer)
        pages.append(image_page(run, chunks))
    return pages, data
