"""Run configuration: frozen dataclasses loaded from TOML and saved, resolved, in every manifest.

A TOML file mirrors the sections below (``[data]``, ``[model]``, ``[train]``, ``[uncertainty]``,
``[attacks.fgsm]``...). Unknown keys are an error, never silently ignored: a typo must not quietly
run the defaults.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field, fields, make_dataclass, replace
from pathlib import Path
from typing import Any

from .attacks import ATTACKS
from .contract import METHOD_LABELS as METHODS

DATASETS = ("mnist-sample", "mnist", "fashion-mnist", "stl10", "imagefolder")
ARCHITECTURES = ("auto", "mnist-cnn", "alexnet")
DEVICES = ("auto", "cpu", "cuda")


# Keys of earlier versions and where their setting lives now.
MOVED = {"model.method": "the uncertainty methods a run compares are listed in [uncertainty] methods, "
                         "e.g. methods = [\"mc_dropout\"]"}


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and what to use instead."""


@dataclass(frozen=True)
class DataConfig:
    name: str = "mnist-sample"  # mnist-sample (embedded, offline) | mnist | fashion-mnist | stl10 | imagefolder
    # Where mnist / fashion-mnist / stl10 / imagefolder files live (imagefolder: the folder itself);
    # fashion-mnist with root "data" and no files there reads Debian's /usr/share/datasets/fashion-mnist.
    root: str = "data"
    download: bool = False  # let torchvision fetch mnist / fashion-mnist / stl10 when the network allows
    test_size: int = 500  # mnist-sample and imagefolder: images held out for testing (stratified; 500 keeps the demo within 3 min)
    train_limit: int = 0  # use at most this many training images (0 = all)
    test_limit: int = 0  # use at most this many test images (0 = all); the first ones by image_id
    image_size: int = 0  # imagefolder: resize every image to this square size (0 = keep, must agree)


@dataclass(frozen=True)
class ModelConfig:
    architecture: str = "auto"  # auto: mnist-cnn for 1x28x28 images, alexnet otherwise
    dropout: tuple[float, ...] = (0.2, 0.25, 0.3)  # one model per dropout rate p
    pretrained: str = ""  # alexnet: local file of torchvision ImageNet weights ("" = random init)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4  # passes over the training set
    batch_size: int = 64  # images per optimiser step
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam weight decay


@dataclass(frozen=True)
class UncertaintyConfig:
    passes: int = 50  # T: stochastic forward passes per image with dropout on
    batch_size: int = 64  # images per batch; each batch runs passes x batch_size rows at once
    bins: int = 15  # equal-width confidence bins for ECE and the reliability diagram
    # The uncertainty methods compared (compute/methods: METHODS): MC dropout plans one model per
    # dropout rate; each ensemble one model of ``members`` checkpoints.
    methods: tuple[str, ...] = ("mc_dropout", "deep_ensemble", "subset_ensemble")
    members: int = 5  # M: an ensemble's members (MC dropout is also measured at T = M passes)
    subset_share: float = 0.5  # subset_ensemble: share of the training set each member is trained on
    # Attacks on an ensemble cost M forwards per step: every attack runs on this many test images, evenly
    # spaced within the smallest attack subset (EOT-PGD's 200), so every model meets every attack there
    # (0 = all of that subset); transfer to an ensemble is judged there too. 64 keeps the CPU demo within 4 minutes.
    ensemble_images: int = 64
    # The attacks also run against an ensemble's first member alone, their adversarials scored on the
    # whole ensemble (transfer). L-BFGS's are left out by default: its minimal adversarials sit on one
    # member's boundary, and it is the costliest.
    transfer_attacks: tuple[str, ...] = ("fgsm", "iaa", "pgd")


# One section per registered attack ([attacks.fgsm], ...): each attack's file defines its config
# dataclass, so adding an attack adds its section here without touching this file.
AttacksConfig = make_dataclass("AttacksConfig", [
    ("enabled", tuple[str, ...], field(default=tuple(ATTACKS))),  # attacks to run, each against every model
    ("batch_size", int, field(default=256)),  # images per attack batch (shards are cut at multiples of it and of uncertainty.batch_size)
    ("kappa", float, field(default=0.9)),  # confident operating point: a wrong class wins with probability >= kappa (dropout off)
    # The attack whose minimal adversarials rank images from robust to vulnerable (good & bad, activation
    # maps, the explorer's default sort), by its card's ranking column; none when it is not enabled.
    ("ranking", str, field(default="fgsm")),
    *[(name, attack.config, field(default_factory=attack.config)) for name, attack in ATTACKS.items()],
], frozen=True, namespace={
    "ranked_by": property(lambda self: self.ranking if self.ranking in self.enabled else None,
                          doc="The ranking attack if it runs, else None."),
    # Every attack's perceptual distance D uses the neighbourhood IAA's sensitivity is defined on, so
    # that the distances of all attacks compare; an attack's part depends on it (compute/pipeline.py).
    "perceptual_window": property(lambda self: self.iaa.window,
                                  doc="Side of the neighbourhood of SD and Sen(x_i) in every attack's D."),
})
AttacksConfig.__doc__ = "[attacks]: which attacks run, their batch size, and one section per registered attack."
AttacksConfig.__module__ = __name__  # where pickle finds it (configs travel to worker processes: compute/workers.py)


@dataclass(frozen=True)
class DetectionConfig:
    resamples: int = 1000  # bootstrap resamples for each AUROC's 95% interval (at least 1,000)
    attacked_share: float = 0.5  # risk-coverage under attack: share of the test images met as their adversarial


@dataclass(frozen=True)
class ActivationsConfig:
    per_class: int = 1  # most robust and most vulnerable images per class (by attacks.ranking) to map
    image_ids: tuple[int, ...] = ()  # further test image ids to map
    max_maps: int = 64  # feature maps shown per layer (the first ones; AlexNet layers have up to 384)


@dataclass(frozen=True)
class EmbeddingConfig:
    # The maps are fitted on this many training images (evenly spaced over the training set; all of
    # them when it has fewer) and every test image and adversarial is placed in them: fitted on the
    # test images, t-SNE would start each adversarial at its own original (docs/benchmarks.md).
    reference_images: int = 1000
    pca_components: int = 50  # t-SNE maps this many principal components of the penultimate features
    perplexity: float = 30.0  # t-SNE perplexity (lowered to what under 3x this many reference images allows)
    neighbours: int = 5  # nearest clean test images in feature space listed on each per-image view
    threads: int = 2  # openTSNE threads


@dataclass(frozen=True)
class OODConfig:
    # Out-of-distribution images scored by every model and method (compute/ood.py): "letters" (rendered
    # with Pillow: nothing to install), a dataset of DATASETS other than the run's, or "" for none.
    dataset: str = "letters"
    root: str = "data"  # where that dataset's files live (as data.root)
    images: int = 500  # use this many, evenly spaced (0 = all; letters: 0 draws 500)


@dataclass(frozen=True)
class RunConfig:
    name: str = "mnist-sample"  # run name: results/<name>/ and the site's URLs
    seed: int = 0  # seeds training, dropout masks and attacks; same seed, same tables
    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    # Processes computing parts side by side (0 = auto: on a CPU one per core, at most 2, each with the
    # cores shared out as threads, and 1 when the test set is a single attack batch; on a GPU 1).
    # Another number of workers gives the same tables to float rounding (compute/workers.py).
    workers: int = 0
    out: str = "build"  # results go to <out>/results/<name>/, the site to <out>/site/
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    attacks: AttacksConfig = field(default_factory=AttacksConfig)  # type: ignore[valid-type]
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    activations: ActivationsConfig = field(default_factory=ActivationsConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    ood: OODConfig = field(default_factory=OODConfig)

    @property
    def results_dir(self) -> Path:
        return Path(self.out) / "results" / self.name

    @property
    def site_dir(self) -> Path:
        return Path(self.out) / "site"

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON-able data (tuples become lists)."""
        return to_plain(self)


def to_plain(value: Any) -> Any:
    """A config dataclass (or part of one) as JSON-able data: tuples become lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def _from_values(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values``, rejecting unknown keys and wrong types."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    for name in unknown:
        if f"{where}{name}" in MOVED:
            raise ConfigError(f"config key {where}{name} has moved: {MOVED[f'{where}{name}']}")
    if unknown:
        raise ConfigError(
            f"unknown config key {where}{unknown[0]!r}; valid keys in [{where.rstrip('.') or 'top level'}] "
            f"are: {', '.join(sorted(known))}"
        )
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for name, value in values.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {where}{name} must be a table ([{where}{name}])")
            kwargs[name] = _from_values(type(default), value, f"{where}{name}.")
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"config key {where}{name} must be a list, e.g. {list(default)}")
            kinds = {f.name: f.type for f in fields(cls)}
            item = str if "str" in str(kinds[name]) else int if "int" in str(kinds[name]) else float
            try:
                kwargs[name] = tuple(item(v) for v in value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"config key {where}{name} must list {item.__name__} values, got {value!r}") from exc
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"config key {where}{name} must be true or false, got {value!r}")
            kwargs[name] = value
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"config key {where}{name} must be a number, got {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise ConfigError(f"config key {where}{name} must be a whole number, got {value!r}")
            kwargs[name] = type(default)(value)
        else:
            if not isinstance(value, str):
                raise ConfigError(f"config key {where}{name} must be a string, got {value!r}")
            kwargs[name] = value
    return cls(**kwargs)


def validate(cfg: RunConfig) -> RunConfig:
    """Raise ConfigError naming the first invalid value and the fix; return ``cfg`` unchanged."""
    def bad(key: str, why: str) -> None:
        raise ConfigError(f"config key {key} {why}")

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", cfg.name):
        bad("name", f"must be 1-64 letters, digits, '.', '_' or '-' (it names a folder and the site's URLs), "
                    f"got {cfg.name!r}")
    if cfg.workers < 0:
        bad("workers", f"must be >= 0 (0 = as many as suit the machine), got {cfg.workers}")
    if cfg.device not in DEVICES:
        bad("device", f"must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if cfg.data.name not in DATASETS:
        bad("data.name", f"must be one of {', '.join(DATASETS)}, got {cfg.data.name!r}")
    for key in ("test_size", "train_limit", "test_limit", "image_size"):
        if getattr(cfg.data, key) < 0:
            bad(f"data.{key}", "must be >= 0")
    if cfg.model.architecture not in ARCHITECTURES:
        bad("model.architecture", f"must be one of {', '.join(ARCHITECTURES)}, got {cfg.model.architecture!r}")
    if not cfg.model.dropout:
        bad("model.dropout", "must list at least one dropout rate, e.g. [0.25]")
    for p in cfg.model.dropout:
        if not 0.0 <= p < 1.0:
            bad("model.dropout", f"rates must lie in [0, 1), got {p}")
    if len(set(cfg.model.dropout)) != len(cfg.model.dropout):
        bad("model.dropout", f"lists a rate twice: {list(cfg.model.dropout)}")
    if cfg.train.epochs < 1 or cfg.train.batch_size < 1 or cfg.train.lr <= 0:
        bad("train", "needs epochs >= 1, batch_size >= 1 and lr > 0")
    if cfg.uncertainty.passes < 1:
        bad("uncertainty.passes", f"must be >= 1 (T stochastic passes), got {cfg.uncertainty.passes}")
    if cfg.uncertainty.batch_size < 1 or cfg.uncertainty.bins < 1:
        bad("uncertainty", "needs batch_size >= 1 and bins >= 1")
    u = cfg.uncertainty
    if not u.methods:
        bad("uncertainty.methods", f"must list at least one method, e.g. [\"mc_dropout\"]; valid: {', '.join(METHODS)}")
    for name in u.methods:
        if name not in METHODS:
            bad("uncertainty.methods", f"names unknown uncertainty method {name!r}; valid methods: {', '.join(METHODS)}")
    if len(set(u.methods)) != len(u.methods):
        bad("uncertainty.methods", f"lists a method twice: {list(u.methods)}")
    if u.members < 2:
        bad("uncertainty.members", f"must be >= 2 (an ensemble of one model has no spread), got {u.members}")
    if not 0.0 < u.subset_share <= 1.0:
        bad("uncertainty.subset_share", f"must lie in (0, 1] (each member's share of the training set), got {u.subset_share}")
    for name in u.transfer_attacks:
        if name not in ATTACKS or ATTACKS[name].card.adaptive:
            plain = [n for n, attack in ATTACKS.items() if not attack.card.adaptive]
            bad("uncertainty.transfer_attacks", f"names {name!r}, which is no non-adaptive attack; valid: {', '.join(plain)}")
    if u.ensemble_images < 0:
        bad("uncertainty.ensemble_images", f"must be >= 0 (0 = every image of the smallest attack subset), got {u.ensemble_images}")
    a = cfg.attacks
    for name in a.enabled:
        if name not in ATTACKS:
            bad("attacks.enabled", f"names unknown attack {name!r}; valid attacks: {', '.join(ATTACKS)}")
    if a.batch_size < 1:
        bad("attacks.batch_size", "must be >= 1")
    if not 0.0 < a.kappa < 1.0:
        bad("attacks.kappa", f"must lie strictly between 0 and 1 (the confident point's probability), got {a.kappa}")
    if a.ranking not in ATTACKS or not ATTACKS[a.ranking].card.ranking_column:
        ranked = [n for n, attack in ATTACKS.items() if attack.card.ranking_column]
        bad("attacks.ranking", f"must name an attack that ranks images ({', '.join(ranked)}), got {a.ranking!r}")
    for name in ATTACKS:
        for key, why in getattr(a, name).problems():
            bad(f"attacks.{name}" + (f".{key}" if key else ""), why)
    if not 0.0 < cfg.detection.attacked_share <= 1.0:
        bad("detection.attacked_share", f"must lie in (0, 1], got {cfg.detection.attacked_share}")
    if cfg.detection.resamples < 1000:
        bad("detection.resamples", f"must be >= 1000 (the bootstrap behind each AUROC interval), "
                                   f"got {cfg.detection.resamples}")
    if cfg.activations.per_class < 0 or cfg.activations.max_maps < 1:
        bad("activations", "needs per_class >= 0 and max_maps >= 1")
    e = cfg.embedding
    if e.reference_images < 10 or e.pca_components < 2 or e.perplexity <= 0 or e.neighbours < 0 or e.threads < 1:
        bad("embedding", "needs reference_images >= 10, pca_components >= 2, perplexity > 0, neighbours >= 0 "
            "and threads >= 1")
    o = cfg.ood
    if o.dataset and o.dataset not in ("letters", *DATASETS):
        bad("ood.dataset", f"must be \"letters\" (rendered, nothing to install), a dataset ({', '.join(DATASETS)}) "
                           f"or \"\" for none, got {o.dataset!r}")
    family = {"mnist-sample": "mnist"}  # the embedded sample is drawn from MNIST
    if o.dataset and family.get(o.dataset, o.dataset) == family.get(cfg.data.name, cfg.data.name) and (
            o.dataset != "imagefolder" or o.root == cfg.data.root):
        bad("ood.dataset", f"is the run's own dataset ({o.dataset!r}): its images are in distribution; name "
                           f"another, e.g. \"letters\", or \"\" for none")
    if o.images < 0:
        bad("ood.images", f"must be >= 0 (0 = all), got {o.images}")
    return cfg


def from_dict(values: dict[str, Any]) -> RunConfig:
    """A validated RunConfig from plain data (a parsed TOML file, or ``RunConfig.to_dict()``)."""
    return validate(_from_values(RunConfig, values, ""))


def from_manifest(manifest: dict[str, Any]) -> RunConfig:
    """The typed config a finished run was computed with, its attacks resolved for the data (the
    data-dependent defaults filled), rebuilt from its manifest: what the assembly and the site read."""
    # Runs from before [ood] existed scored no OOD set.
    return from_dict({"ood": {"dataset": ""}, **manifest["config"], "attacks": manifest["attacks"]["resolved"]})


def load(path: str | Path | None, **overrides: Any) -> RunConfig:
    """Load a TOML config (or the defaults when ``path`` is None), apply non-None top-level
    ``overrides`` and dotted ``section__key`` overrides, and validate."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} not found; pass an existing TOML file to --config")
        try:
            values = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc
    cfg = _from_values(RunConfig, values, "")
    for key, value in overrides.items():
        if value is None:
            continue
        if "__" in key:
            section, sub = key.split("__", 1)
            cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{sub: value})})
        else:
            cfg = replace(cfg, **{key: value})
    return validate(cfg)
