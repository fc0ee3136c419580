"""Run configuration: frozen dataclasses loaded from TOML and saved, resolved, in every manifest.

A TOML file mirrors the sections below (``[data]``, ``[model]``, ``[train]``, ``[uncertainty]``,
``[attacks.fgsm]``...). Unknown keys are an error, never silently ignored: a typo must not quietly
run the defaults.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DATASETS = ("mnist-sample", "mnist", "stl10", "imagefolder")
ARCHITECTURES = ("auto", "mnist-cnn", "alexnet")
DEVICES = ("auto", "cpu", "cuda")
ATTACKS = ("fgsm", "lbfgs", "iaa")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and what to use instead."""


@dataclass(frozen=True)
class DataConfig:
    name: str = "mnist-sample"  # mnist-sample (embedded, offline) | mnist | stl10 | imagefolder
    root: str = "data"  # where mnist / stl10 / imagefolder files live (imagefolder: the folder itself)
    download: bool = False  # let torchvision fetch mnist / stl10 when the network allows
    test_size: int = 1000  # mnist-sample and imagefolder: images held out for testing (stratified)
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


@dataclass(frozen=True)
class FgsmConfig:
    eps: tuple[float, ...] = ()  # budgets to report; () = 0.05, 0.1, 0.2, 0.3 (MNIST-like) or 2, 4, 8 /255 (colour)
    search_max: float = 0.0  # largest epsilon tried for each image's smallest flip (0 = 0.5 grey, 32/255 colour)
    search_grid: int = 16  # grid steps up to search_max before bisection
    search_refine: int = 8  # bisection steps inside the first flipping grid interval


@dataclass(frozen=True)
class LbfgsConfig:
    c_init: float = 1.0  # first c of the search (weight of the cross-entropy term)
    c_factor: float = 10.0  # c grows (or shrinks) by this factor until the outcome changes
    c_min: float = 1e-3  # smallest c tried
    c_max: float = 1e4  # largest c tried; images still not fooled count as failures
    bisection_steps: int = 3  # geometric bisections of [c_fail, c_success]: c is minimal within c_factor**(1/2**steps)
    iterations: int = 10  # L-BFGS iterations per value of c
    history: int = 10  # L-BFGS memory (pairs of steps and gradient changes)
    target: int = -1  # class to aim at; -1 = most likely wrong class (untargeted use)


@dataclass(frozen=True)
class IaaConfig:
    k: float = 10.0  # sharpness of the smooth maximum in Gap(X)
    m: int = 10  # pixels perturbed per iteration
    delta: float = 0.0  # step per pixel per iteration (0 = 0.1 grey, 8/255 colour)
    d_max: float = 300.0  # perceptual-distance budget D_max
    window: int = 3  # neighbourhood side for SD(x_i); odd
    margin: float = 0.0  # success needs max_{i != t} P_i - P_t above this
    max_iterations: int = 500  # hard cap per image


@dataclass(frozen=True)
class AttacksConfig:
    enabled: tuple[str, ...] = ("fgsm", "lbfgs", "iaa")  # attacks to run, each against every model
    batch_size: int = 256  # images per attack batch (shards are cut at multiples of it and of uncertainty.batch_size)
    fgsm: FgsmConfig = field(default_factory=FgsmConfig)
    lbfgs: LbfgsConfig = field(default_factory=LbfgsConfig)
    iaa: IaaConfig = field(default_factory=IaaConfig)


@dataclass(frozen=True)
class ActivationsConfig:
    per_class: int = 1  # most robust and most vulnerable images per class (by FGSM min_eps) to map
    image_ids: tuple[int, ...] = ()  # further test image ids to map
    max_maps: int = 64  # feature maps shown per layer (the first ones; AlexNet layers have up to 384)


@dataclass(frozen=True)
class RunConfig:
    name: str = "mnist-sample"  # run name: results/<name>/ and the site's URLs
    seed: int = 0  # seeds training, dropout masks and attacks; same seed, same tables
    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    out: str = "build"  # results go to <out>/results/<name>/, the site to <out>/site/
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    attacks: AttacksConfig = field(default_factory=AttacksConfig)
    activations: ActivationsConfig = field(default_factory=ActivationsConfig)

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


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``values``, rejecting unknown keys and wrong types."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
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
            kwargs[name] = _build(type(default), value, f"{where}{name}.")
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
    a = cfg.attacks
    for name in a.enabled:
        if name not in ATTACKS:
            bad("attacks.enabled", f"names unknown attack {name!r}; valid attacks: {', '.join(ATTACKS)}")
    if a.batch_size < 1:
        bad("attacks.batch_size", "must be >= 1")
    for eps in a.fgsm.eps:
        if eps < 0:
            bad("attacks.fgsm.eps", f"values must be >= 0 (an L-infinity budget in [0, 1]), got {eps}")
    if a.fgsm.search_max < 0 or a.fgsm.search_grid < 1 or a.fgsm.search_refine < 0:
        bad("attacks.fgsm", "needs search_max >= 0, search_grid >= 1 and search_refine >= 0")
    lb = a.lbfgs
    if not 0 < lb.c_min <= lb.c_init <= lb.c_max or lb.c_factor <= 1:
        bad("attacks.lbfgs", "needs 0 < c_min <= c_init <= c_max and c_factor > 1")
    if lb.iterations < 1 or lb.history < 1 or lb.bisection_steps < 0:
        bad("attacks.lbfgs", "needs iterations >= 1, history >= 1 and bisection_steps >= 0")
    ia = a.iaa
    if ia.k <= 0 or ia.m < 1 or ia.delta < 0 or ia.d_max <= 0 or ia.max_iterations < 1:
        bad("attacks.iaa", "needs k > 0, m >= 1, delta >= 0, d_max > 0 and max_iterations >= 1")
    if ia.window < 3 or ia.window % 2 == 0:
        bad("attacks.iaa.window", f"must be an odd number >= 3, got {ia.window}")
    if cfg.activations.per_class < 0 or cfg.activations.max_maps < 1:
        bad("activations", "needs per_class >= 0 and max_maps >= 1")
    return cfg


def from_dict(values: dict[str, Any]) -> RunConfig:
    return validate(_build(RunConfig, values, ""))


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
    cfg = _build(RunConfig, values, "")
    for key, value in overrides.items():
        if value is None:
            continue
        if "__" in key:
            section, sub = key.split("__", 1)
            cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{sub: value})})
        else:
            cfg = replace(cfg, **{key: value})
    return validate(cfg)
