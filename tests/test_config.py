"""Config: frozen, loaded from TOML, validated with messages that name the key and the fix."""
from __future__ import annotations

import dataclasses

import pytest

from compute import config
from compute.config import ConfigError


def test_defaults_follow_the_design():
    cfg = config.load(None)
    assert cfg.model.dropout == (0.2, 0.25, 0.3) and cfg.uncertainty.passes == 50 and cfg.uncertainty.bins == 15
    assert cfg.data.name == "mnist-sample"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]


def test_toml_values_and_overrides_are_applied(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('name = "x"\n[model]\ndropout = [0.1, 0.5]\n[uncertainty]\npasses = 7\n')
    cfg = config.load(f, out="o", data__root="r", seed=None)
    assert (cfg.name, cfg.model.dropout, cfg.uncertainty.passes, cfg.out, cfg.data.root) == \
        ("x", (0.1, 0.5), 7, "o", "r")
    assert cfg.to_dict()["model"]["dropout"] == [0.1, 0.5]
    assert config.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("text,message", [
    ("colour = 1", "unknown config key 'colour'"),
    ("[model]\ndroput = [0.2]", r"unknown config key model.'droput'.*valid keys in \[model\].*dropout"),
    ("[data]\nname = \"cifar\"", "data.name must be one of mnist-sample"),
    ("[model]\ndropout = [1.0]", r"rates must lie in \[0, 1\)"),
    ("[uncertainty]\npasses = 0", "passes must be >= 1"),
    ("[train]\nepochs = 1.5", "whole number"),
    ("name = \"a/b\"", "letters, digits"),
    ("name = \"<img src=x onerror=alert(1)>\"", "letters, digits"),
    ("[attacks]\nenabled = [\"pgd\"]", "unknown attack 'pgd'; valid attacks: fgsm, lbfgs, iaa"),
    ("[attacks.fgsm]\neps = [-0.1]", "eps values must be >= 0"),
    ("[attacks.iaa]\nwindow = 4", "odd number"),
    ("[model]\ndropout = 0.2", "must be a list"),
])
def test_invalid_configs_name_the_key(tmp_path, text, message):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(f)


def test_missing_or_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("name = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(tmp_path / "bad.toml")
