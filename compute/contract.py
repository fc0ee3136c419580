"""The contract between the two stages: what a results directory holds and what its names mean.

torch-free (pyarrow and the standard library only): the compute stage writes by it, the site builder
reads by it, and neither restates it. It owns
- the table schemas and their version (``SCHEMAS``, ``SCHEMA_VERSION``);
- the names of image sets (``condition_name``), operating points and condition kinds;
- a model's key (``model_key``) and label;
- the palette, one colour per attack and per class (``PALETTE``), handed to the charts and the JS;
- the file hash every table is checked by (``file_sha256``).
docs/data-contract.md describes every column.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa

SCHEMA_VERSION = 12

# An attack's adversarial of an image sits at one of these operating points: just across the decision
# boundary, a wrong class at probability >= kappa, or a fixed budget (eps set).
MINIMAL, CONFIDENT, BUDGET = "minimal", "confident", "budget"
OPERATING_POINTS = (MINIMAL, CONFIDENT, BUDGET)
TILED_POINTS = (MINIMAL, CONFIDENT)  # the points whose adversarials are tiled and have a per-image view
CLEAN = "clean"  # the condition of the unattacked test images
REFERENCE = "reference"  # the training images the feature maps are fitted on (features only; never shown)
# Out-of-distribution images (compute/ood.py): their table, their detection rows' reference and attack.
OOD = "ood"
NOISE_PREFIX = "noise-"  # a noise control's condition: the prefix, then its adversarials' condition


def condition_name(attack: str, operating_point: str, eps: float | None = None, noise: bool = False) -> str:
    """The name of one set of attacked images: "fgsm" (minimal), "fgsm-confident", "fgsm-eps0.1" (a
    budget), and "noise-" before any of them for its noise control."""
    if operating_point == BUDGET:
        base = f"{attack}-eps{eps:g}"
    else:
        base = attack if operating_point == MINIMAL else f"{attack}-{operating_point}"
    return f"{NOISE_PREFIX}{base}" if noise else base


# A model's key names the model everywhere (tables, parts, checkpoints, URLs); its dropout rate,
# architecture and uncertainty method are attributes of it, kept beside the key. Each uncertainty
# method (compute/methods) says what sets its models apart (``tag``) and how a reader names them.
ARCHITECTURE_KEYS = {"mnist-cnn": "cnn", "alexnet": "alexnet"}

# The uncertainty methods (compute/methods registers one file per name) and what a reader calls them.
METHOD_LABELS = {"mc_dropout": "MC dropout", "deep_ensemble": "deep ensemble", "subset_ensemble": "subset ensemble"}
ENSEMBLE_METHODS = ("deep_ensemble", "subset_ensemble")  # their passes are members, not dropout masks


def model_key(architecture: str, tag: str) -> str:
    """``cnn-p0.2``: the architecture's short name, then the method's tag for the model (``p0.2``)."""
    return f"{ARCHITECTURE_KEYS.get(architecture, architecture)}-{tag}"


# One palette, colour-blind safe, defined here only. Attacks take Okabe & Ito's colours (2008) by name;
# classes take Tableau's colour-blind 10 (20 classes and more repeat it; the class is also written).
# An outcome's colour is not an attack's: the two meet in the explorer.
OKABE_ITO = {"orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7", "black": "#000000"}
TABLEAU_CB10 = ("#006BA4", "#FF800E", "#ABABAB", "#595959", "#5F9ED1", "#C85200", "#898989", "#A2C8EC",
                "#FFBC79", "#CFCFCF")
# Classes: Paul Tol's "muted" nine and black. Tableau's colour-blind 10 has four greys, two of them
# 13 ΔE apart and one the light grey of a filtered-out point on the map; these are at least 23 ΔE
# apart (CIELAB), 17 under simulated deuteranopia (Machado et al. 2009).
TOL_MUTED = ("#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499",
             "#000000")
PALETTE = {
    # clean images, beside any attack: a dark grey, 17 ΔE from every attack colour and its tint (a mid
    # grey was PGD's tint, black mixed with white, within 5 ΔE)
    "clean": "#555555",
    "bar": TABLEAU_CB10[0],  # a chart's one colour, where colour encodes nothing
    "neutral": "#9A9A9A",  # marks beside a coloured legend they are not part of (reliability bins, a scatter under its fits)
    "correct": OKABE_ITO["blue"], "wrong": OKABE_ITO["vermillion"],  # a prediction
    "outcome": {"fooled": OKABE_ITO["vermillion"], "not fooled": OKABE_ITO["sky_blue"], "wrong before": "#595959",
                "not attacked": "#C7C7C7"},  # not attacked: drawn hollow in the grid, light grey on the map
    "scores": dict(zip(("entropy", "mutual_info", "variation_ratio", "max_prob"),
                       ("#006BA4", "#C85200", "#5F9ED1", "#595959"))),  # Tableau CB10
}
SCORES = tuple(PALETTE["scores"])  # the detection scores, "higher = flagged"
BASELINE_SCORE = "max_prob"  # the dropout-off max softmax probability (Hendrycks & Gimpel 2017)
MC_SCORES = tuple(s for s in SCORES if s != BASELINE_SCORE)  # what the uncertainty method adds
# A detection row's positives: the set, or a reference; "transfer": an ensemble's first member's
# adversarials that fool the whole ensemble (compute/detection.py transfer_detection).
REFERENCES = ("adversarial", "noise", "unattacked", "transfer")


def class_colours(count: int) -> list[str]:
    """One colour per class, in class order."""
    return [TOL_MUTED[k % len(TOL_MUTED)] for k in range(count)]


# Models share a chart only with each other (the robustness curve): the strong colours of Tableau's
# colour-blind 10, its light greys left out, which lines on white would lose.
MODEL_COLOURS = tuple(TABLEAU_CB10[k] for k in (0, 1, 3, 4, 5, 6, 7, 8))


def model_colours(count: int) -> list[str]:
    """One colour per model, in run order."""
    return [MODEL_COLOURS[k % len(MODEL_COLOURS)] for k in range(count)]


def tint(colour: str, share: float = 0.5) -> str:
    """``colour`` mixed with white (``share`` of white): an attack's confident point beside its minimal one."""
    rgb = [int(colour[k:k + 2], 16) for k in (1, 3, 5)]
    return "#" + "".join(f"{round(v + (255 - v) * share):02X}" for v in rgb)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes: the manifest records it for every table, the builder checks it."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


f32, f64, i64, s = pa.float32(), pa.float64(), pa.int64(), pa.string()

# Every table with rows per model carries ``model`` (the key) and ``dropout_p`` (an attribute of the
# model, null for a model without a dropout rate).
SCHEMAS: dict[str, pa.Schema] = {
    # One row per test image.
    "images": pa.schema([
        ("image_id", i64), ("label", i64), ("class_name", s), ("sheet", s), ("sheet_col", i64), ("sheet_row", i64),
    ]),
    # One row per (image_id, model, condition); condition is "clean" or one set of attacked images
    # (condition_name), which attack, operating_point, eps and noise spell out. plain_pred and
    # max_prob: the model with dropout off; pred and the rest: the uncertainty method's passes.
    "uncertainty": pa.schema([
        ("image_id", i64), ("model", s), ("dropout_p", f64), ("condition", s), ("attack", s),
        ("operating_point", s), ("eps", f64), ("noise", pa.bool_()), ("label", i64),
        ("plain_pred", i64), ("max_prob", f64), ("pred", i64), ("confidence", f64), ("true_prob", f64),
        ("top_prob", f64), ("entropy", f64), ("mutual_info", f64), ("variation_ratio", f64), ("fooled_share", f64),
        ("mean_probs", pa.list_(f32)), ("var_probs", pa.list_(f32)), ("pass_true_prob", pa.list_(f32)),
    ]),
    # One row per (image_id, model, attack, operating_point) of an ensemble: the attack made on its first
    # member alone (member 0), its minimal or confident adversarial scored on the whole ensemble: did it
    # fool the member (member_success, among member_correct images) and the ensemble (fooled, pred), and
    # the ensemble's measures of it (max_prob: the member's own softmax, the baseline).
    "transfer": pa.schema([
        ("image_id", i64), ("model", s), ("dropout_p", f64), ("attack", s), ("operating_point", s), ("member", i64),
        ("member_correct", pa.bool_()), ("member_success", pa.bool_()), ("fooled", pa.bool_()), ("pred", i64),
        ("entropy", f64), ("mutual_info", f64), ("variation_ratio", f64), ("max_prob", f64), ("top_prob", f64),
    ]),
    # One row per (image_id, model, condition); condition is "clean" or one set of attacked images: wrong before the
    # attack, not attacked, never a success. noise_*: the noise control of a successful adversarial.
    "attacks": pa.schema([
        ("image_id", i64), ("model", s), ("dropout_p", f64), ("attack", s), ("operating_point", s),
        ("eps", f64), ("clean_correct", pa.bool_()), ("success", pa.bool_()), ("adv_pred", i64), ("adv_prob", f64),
        ("l0", i64), ("l2", f64), ("linf", f64), ("perceptual_distance", f64), ("flat_pixels_changed", i64),
        ("iterations", i64), ("min_eps", f64), ("c", f64), ("noise_l0", i64), ("noise_l2", f64), ("noise_linf", f64),
        ("noise_pred", i64), ("seconds", f64), ("ssim", f64),
    ]),
    # Does a successful minimal or confident adversarial still fool after a transformation (judged by its
    # own model), or on another model (transform "transfer", target that model; its clean-correct images)?
    "survival": pa.schema([
        ("image_id", i64), ("model", s), ("dropout_p", f64), ("attack", s), ("operating_point", s),
        ("transform", s), ("target", s), ("pred", i64), ("fooled", pa.bool_()),
    ]),
    # Where each adversarial sits in the sprite sheets, per operating point; originals are in images.
    "tiles": pa.schema([
        ("image_id", i64), ("model", s), ("dropout_p", f64), ("attack", s), ("operating_point", s),
        ("picture", s), ("sheet", s), ("sheet_col", i64), ("sheet_row", i64),
    ]),
    # Activation-map grids of selected images: one tile per (image, model, condition, conv layer).
    "activations": pa.schema([
        ("image_id", i64), ("model", s), ("dropout_p", f64), ("condition", s), ("layer", s),
        ("maps", i64), ("tile_width", i64), ("tile_height", i64), ("sheet", s), ("sheet_col", i64),
        ("sheet_row", i64),
    ]),
    # The feature map: per model, method ("pca" or "tsne", fitted on the clean images) and condition,
    # the 2-D position of each image's penultimate features.
    "embedding": pa.schema([
        ("image_id", i64), ("model", s), ("dropout_p", f64), ("condition", s), ("method", s),
        ("x", f64), ("y", f64),
    ]),
    # How faithful each map is, per (model, method, condition: an attack's minimal or confident
    # adversarials): of its n_images successful adversarials, the share whose 10 nearest clean images
    # (own original left out) are mostly of the adversarial class, in feature space and on the map;
    # explained_variance: the share of the features' variance PCA's 2-D map keeps (pca rows only).
    "map_faithfulness": pa.schema([
        ("model", s), ("method", s), ("dropout_p", f64), ("condition", s), ("attack", s), ("operating_point", s),
        ("n_images", i64), ("share_features", f64), ("share_map", f64), ("explained_variance", f64),
    ]),
    # Per model, each clean test image's nearest other clean test images in the full feature space.
    "neighbours": pa.schema([
        ("image_id", i64), ("model", s), ("dropout_p", f64), ("rank", i64), ("neighbour_id", i64),
        ("distance", f64),
    ]),
    # Run-level figures per (model, condition), for all images (class_name null) and per class.
    "metrics": pa.schema([
        ("model", s), ("dropout_p", f64), ("condition", s), ("class_name", s), ("n_images", i64),
        ("accuracy", f64), ("accuracy_low", f64), ("accuracy_high", f64), ("ece", f64), ("nll", f64), ("brier", f64), ("mean_entropy", f64),
        ("mean_mutual_info", f64), ("mean_fooled_share", f64),
    ]),
    # Reliability diagram: equal-width bins of the top probability per (model, condition).
    "calibration": pa.schema([
        ("model", s), ("dropout_p", f64), ("condition", s), ("bin", i64), ("lower", f64), ("upper", f64),
        ("n_images", i64), ("mean_top_prob", f64), ("accuracy", f64),
    ]),
    # Per (model, attack, operating_point minimal | confident): n_attacked = the clean-correct images,
    # n_wrong_before = the others; rates over n_attacked; distortion and uncertainty means over the successes.
    "attack_summary": pa.schema([
        ("model", s), ("dropout_p", f64), ("attack", s), ("operating_point", s), ("n_attacked", i64),
        ("n_wrong_before", i64), ("n_success", i64), ("success_rate", f64), ("success_low", f64),
        ("success_high", f64), ("failure_rate", f64),
        ("mean_l2", f64), ("mean_linf", f64), ("mean_perceptual_distance", f64), ("mean_flat_pixels_changed", f64),
        ("mean_l0", f64), ("mean_iterations", f64), ("mean_entropy_clean", f64), ("mean_entropy", f64),
        ("mean_fooled_share", f64),
    ]),
    # Accuracy (dropout off) under the ranking attack's budgets per (model, eps) over all images;
    # eps 0 = clean accuracy.
    "robustness": pa.schema([
        ("model", s), ("dropout_p", f64), ("attack", s), ("eps", f64), ("accuracy", f64), ("n_images", i64),
    ]),
    # Success rate per (model, attack, operating_point, eps, class_name) over the clean-correct images
    # of the class: every budget, and the minimal adversarials of attacks without budgets.
    "success_rates": pa.schema([
        ("model", s), ("dropout_p", f64), ("attack", s), ("operating_point", s), ("eps", f64),
        ("class_name", s), ("success_rate", f64), ("n_attacked", i64),
    ]),
    # Does uncertainty flag the attack? Per (model, attack, operating_point, eps, reference, score):
    # negatives the clean-correct images of the attack's image set (n_clean); positives (n_adv) its
    # successful adversarials (reference "adversarial"), their noise controls ("noise") or the same
    # images unattacked ("unattacked"). delta_*: paired image-level bootstrap of AUROC(score) -
    # AUROC(max_prob) on the same positives; gap_*: mean per-image score(adversarial) - score(noise).
    "detection": pa.schema([
        ("model", s), ("dropout_p", f64), ("attack", s), ("operating_point", s), ("eps", f64),
        ("reference", s), ("score", s), ("n_clean", i64), ("n_adv", i64), ("auroc", f64),
        ("auroc_low", f64), ("auroc_high", f64), ("aupr", f64), ("fpr_at_95tpr", f64), ("fpr_tied", pa.bool_()),
        ("mean_clean", f64), ("mean_adv", f64), ("delta_vs_baseline", f64), ("delta_low", f64),
        ("delta_high", f64), ("gap_vs_noise", f64), ("gap_low", f64), ("gap_high", f64),
    ]),
    # The ROC curve of every detection row (same keys), at most 101 points each.
    "roc": pa.schema([
        ("model", s), ("dropout_p", f64), ("attack", s), ("operating_point", s), ("eps", f64),
        ("reference", s), ("score", s), ("fpr", f64), ("tpr", f64),
    ]),
    # What knowing the defence adds: per (model, adaptive attack, eps, score), its AUROC against its
    # non-adaptive baseline's (the attack its card names) on the clean-correct images both attacked,
    # with the paired image-level bootstrap of the difference (attack - baseline).
    "adaptive": pa.schema([
        ("model", s), ("dropout_p", f64), ("attack", s), ("baseline", s), ("eps", f64), ("score", s),
        ("n_clean", i64), ("n_adv", i64), ("n_baseline", i64), ("auroc", f64), ("auroc_baseline", f64),
        ("delta", f64), ("delta_low", f64), ("delta_high", f64),
    ]),
    # Selective prediction per (model, condition, score): keep the most certain share (coverage), risk =
    # error rate among them. Under an attack the population is its test images with n_attacked of them
    # met as their adversarial. prediction: what the score judges (mc_mean | dropout_off). aurc, the
    # oracle's, e_aurc = aurc - oracle_aurc, random_aurc = the error rate; n_images = N.
    "risk_coverage": pa.schema([
        ("model", s), ("dropout_p", f64), ("condition", s), ("attack", s), ("operating_point", s),
        ("eps", f64), ("score", s), ("prediction", s), ("n_images", i64), ("n_attacked", i64), ("coverage", f64),
        ("risk", f64), ("aurc", f64), ("oracle_aurc", f64), ("e_aurc", f64), ("e_aurc_low", f64),
        ("e_aurc_high", f64), ("random_aurc", f64),
    ]),
    # The seed's claims checked (compute/findings.py): per (claim, measure, model, attack,
    # operating_point) the measured value with its 95% bootstrap interval over the N images, and the
    # verdict ("holds", "does not hold", "not distinguishable"; "" for a measure that decides nothing
    # alone). attack and operating_point are empty for the clean images.
    "findings": pa.schema([
        ("claim", s), ("measure", s), ("model", s), ("dropout_p", f64), ("attack", s), ("baseline", s),
        ("operating_point", s), ("eps", f64), ("value", f64), ("low", f64), ("high", f64), ("n", i64), ("verdict", s),
    ]),
}
# MC dropout's measures from its first M passes (M = uncertainty.members), for the comparison with the
# ensembles at equal inference cost: the uncertainty table's columns, MC-dropout models only.
SCHEMAS["equal_passes"] = SCHEMAS["uncertainty"]
# The uncertainty methods compared at equal cost (compute/equal_cost.py): one row per (model, passes),
# MC dropout at T passes and at T = M, each ensemble at its M members. Training: seconds and images seen
# (epochs x images, summed over members); inference: passes and measured seconds per clean image.
# accuracy, ECE and NLL on the clean test images with percentile-bootstrap 95% intervals (n_images);
# *_vs_reference: the paired image-level bootstrap of this row minus the reference row (MC dropout at
# T passes of the first dropout rate). Detection: entropy against the baseline (max_prob) as AUROC
# differences with paired intervals, on the confident adversarials of the non-adaptive attacks pooled
# over the images every model was attacked on (n_confident positives) and on the adaptive attacker's
# adversarials at its largest budget (n_adaptive); auroc_top_prob_confident: the method's own mean
# max-probability as the score.
SCHEMAS["methods"] = pa.schema([
    ("model", s), ("dropout_p", f64), ("method", s), ("label", s), ("passes", i64), ("reference", s),
    ("train_seconds", f64), ("train_images", i64), ("seconds_per_image", f64), ("n_images", i64),
    ("accuracy", f64), ("accuracy_low", f64), ("accuracy_high", f64), ("ece", f64), ("ece_low", f64),
    ("ece_high", f64), ("nll", f64), ("nll_low", f64), ("nll_high", f64), ("brier", f64),
    ("accuracy_vs_reference", f64), ("accuracy_vs_reference_low", f64), ("accuracy_vs_reference_high", f64),
    ("nll_vs_reference", f64), ("nll_vs_reference_low", f64), ("nll_vs_reference_high", f64),
    ("ece_vs_reference", f64), ("ece_vs_reference_low", f64), ("ece_vs_reference_high", f64),
    ("n_clean", i64), ("n_confident", i64), ("auroc_entropy_confident", f64), ("auroc_max_prob_confident", f64),
    ("auroc_top_prob_confident", f64), ("delta_confident", f64), ("delta_confident_low", f64),
    ("delta_confident_high", f64), ("n_adaptive", i64), ("delta_adaptive", f64), ("delta_adaptive_low", f64),
    ("delta_adaptive_high", f64),
])
# One row per (OOD image, model): the run's out-of-distribution images ([ood]; image_id: their position
# in the OOD set, not a test image) scored by the model's uncertainty method as the uncertainty table
# scores clean images; no label, so no correctness. dataset names the OOD set; sheet, sheet_col and
# sheet_row place the image's tile (tiles/ood-NNN), as in the images table.
SCHEMAS["ood"] = pa.schema([
    ("image_id", i64), ("model", s), ("dropout_p", f64), ("dataset", s), ("plain_pred", i64), ("max_prob", f64),
    ("pred", i64), ("top_prob", f64), ("entropy", f64), ("mutual_info", f64), ("variation_ratio", f64),
    ("mean_probs", pa.list_(f32)), ("sheet", s), ("sheet_col", i64), ("sheet_row", i64),
])
TABLES = tuple(SCHEMAS)
