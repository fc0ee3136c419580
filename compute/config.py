"""Run configuration: frozen dataclasses loaded from TOML and saved, resolved, in every manifest.

A TOML file mirrors the sections below (``[data]``, ``[model]``, ``[train]``, ``[uncertainty]``,
``[attacks.fgsm]``...). Unknown keys are an error, never silently ignored: a typo must not quietly
run the defaults.
"""
from __future__ import annotations

import dataclasses
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
class RunConfig:
    name: str = "mnist-sample"  # run name: results/<name>/ and the site's URLs
    seed: int = 0  # seeds training, dropout masks and attacks; same seed, same tables
    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    out: str = "build"  # results go to <out>/results/<name>/, the site to <out>/site/
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)

    @property
    def results_dir(self) -> Path:
        return Path(self.out) / "results" / self.name

    @property
    def site_dir(self) -> Path:
        return Path(self.out) / "site"

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON-able data (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
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
            kwargs[name] = tuple(float(v) for v in value)
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

    if not cfg.name or any(c in cfg.name for c in "/\\") or cfg.name in (".", ".."):
        bad("name", f"must be a plain folder name (no slashes), got {cfg.name!r}")
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
