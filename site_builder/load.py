"""Read a results directory (manifest + Parquet tables), checking it is complete and unaltered.

The site builder reads only these files: it never imports torch or the compute stage.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from compute.config import RunConfig, from_manifest
from compute.contract import CLEAN, SCHEMA_VERSION, TABLES, TILED_POINTS, condition_name, file_sha256


class ResultsError(RuntimeError):
    """A results directory cannot be built from; the message says why and what to do."""


@dataclass(frozen=True)
class Run:
    """One results directory: its manifest and tables."""

    path: Path
    manifest: dict
    images: pd.DataFrame
    uncertainty: pd.DataFrame
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    attacks: pd.DataFrame
    tiles: pd.DataFrame
    activations: pd.DataFrame
    attack_summary: pd.DataFrame
    robustness: pd.DataFrame
    success_rates: pd.DataFrame
    detection: pd.DataFrame
    roc: pd.DataFrame
    risk_coverage: pd.DataFrame
    findings: pd.DataFrame  # the seed's claims checked (compute/findings.py)
    survival: pd.DataFrame  # do the adversarials still fool after a transformation, or on another model
    embedding: pd.DataFrame
    neighbours: pd.DataFrame
    map_faithfulness: pd.DataFrame
    adaptive: pd.DataFrame
    transfer: pd.DataFrame  # an ensemble's first member's adversarials scored on the whole ensemble
    equal_passes: pd.DataFrame  # MC dropout's measures from its first M passes
    methods: pd.DataFrame  # the uncertainty methods compared at equal cost (compute/equal_cost.py)
    ood: pd.DataFrame  # the out-of-distribution images scored by every model (compute/ood.py); empty without

    @property
    def name(self) -> str:
        return str(self.manifest["run"])

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["dataset"]["class_names"])

    @functools.cached_property
    def config(self) -> RunConfig:
        """The typed config the run was computed with, its attacks resolved for the data: what the pages
        read settings from (never the manifest's nested dicts)."""
        return from_manifest(self.manifest)

    @property
    def models(self) -> list[dict]:
        """The manifest's models (key, label, method, architecture, dropout_p, accuracy...), in run order."""
        return list(self.manifest["models"])

    @property
    def model_keys(self) -> list[str]:
        return [m["key"] for m in self.models]

    def model(self, key: str) -> dict:
        """The manifest's entry of the model ``key``."""
        return next(m for m in self.models if m["key"] == key)

    @property
    def conditions(self) -> list[str]:
        """What the per-image view shows the uncertainty of: "clean", then per attack and tiled operating
        point (minimal, confident) the adversarial and its noise control."""
        return [CLEAN, *[name for a, point in self.attack_points
                         for name in (condition_name(a, point), condition_name(a, point, noise=True))]]

    @property
    def attack_points(self) -> list[tuple[str, str]]:
        """(attack, operating point) of every tiled adversarial, attack by attack."""
        return [(a, point) for a in self.attack_names for point in TILED_POINTS]

    @property
    def attack_names(self) -> list[str]:
        """Attacks of this run, in the order they were configured."""
        return list(self.manifest["attacks"]["enabled"])

    @property
    def cards(self) -> dict[str, dict]:
        """Each attack's card (label, description, norm, colours, adaptive, budget caption, subset,
        ranking column), as the compute stage's registry wrote it into the manifest."""
        return dict(self.manifest["attacks"]["cards"])

    @property
    def ranking(self) -> str | None:
        """The attack that ranks images from robust to vulnerable, if it ran."""
        return self.manifest["attacks"]["ranking"]


def load_run(path: str | Path) -> Run:
    """Load ``results/<run>/``; raise ResultsError if it is unfinished, altered or of another schema."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not path.is_dir():
        raise ResultsError(f"results directory {path} not found; run `robustviz compute` first "
                           f"(it writes build/results/<run>/)")
    if not manifest_path.is_file():
        raise ResultsError(f"{path} has no manifest.json, so its compute did not finish; "
                           f"re-run `robustviz compute` for this run")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{manifest_path} is not valid JSON ({exc}); re-run `robustviz compute`") from exc
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(f"{path} uses results schema {manifest.get('schema_version')}, this builder reads "
                           f"schema {SCHEMA_VERSION}; re-run `robustviz compute` with this version")
    frames = {}
    for name in TABLES:
        file = path / f"{name}.parquet"
        if not file.is_file():
            raise ResultsError(f"{file} is missing; re-run `robustviz compute`")
        if file_sha256(file) != manifest["tables"].get(name):
            raise ResultsError(f"{file} does not match the sha256 in its manifest (changed after compute); "
                               f"re-run `robustviz compute`")
        frames[name] = pd.read_parquet(file)
    return Run(path=path, manifest=manifest, **frames)
