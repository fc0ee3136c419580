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
    ("[attacks]\nenabled = [\"cw\"]", "unknown attack 'cw'; valid attacks: fgsm, lbfgs, iaa, eot_pgd, pgd"),
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


def test_the_config_the_contract_and_the_attack_registry_load_without_torch():
    """The site builder and the assembly read configs and attack cards: that must not need torch."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, compute.config, compute.contract, compute.attacks, compute.attacks.spec\n"
            "cfg = compute.config.load(None)\n"
            "print('torch' in sys.modules, sorted(compute.attacks.cards(cfg.attacks)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False", out.stdout
    assert "'eot_pgd', 'fgsm', 'iaa', 'lbfgs'" in out.stdout


def test_a_run_is_rebuilt_as_a_typed_config_from_its_manifest():
    cfg = config.load(None, attacks__enabled=("fgsm", "lbfgs"))
    from compute.attacks import resolve

    resolved = resolve(cfg.attacks, 1)
    manifest = {"config": cfg.to_dict(), "attacks": {"resolved": config.to_plain(resolved)}}
    again = config.from_manifest(manifest)
    assert again.attacks == resolved and again.attacks.fgsm.eps == (0.05, 0.1, 0.2, 0.3)  # resolved for grey data
    assert again.model == cfg.model and again.attacks.ranked_by == "fgsm"
    assert config.load(None, attacks__enabled=("lbfgs",)).attacks.ranked_by is None  # ranking attack not run


def test_the_ranking_attack_must_rank_images():
    with pytest.raises(ConfigError, match="attacks.ranking must name an attack that ranks images"):
        config.from_dict({"attacks": {"ranking": "cw"}})


def test_an_unknown_uncertainty_method_is_named_with_the_valid_ones():
    from compute import pipeline

    with pytest.raises(ConfigError, match="uncertainty.methods names unknown uncertainty method 'ensemble-of-guesses'; "
                                          "valid methods: mc_dropout, deep_ensemble, subset_ensemble"):
        config.load(None, uncertainty__methods=("mc_dropout", "ensemble-of-guesses"))
    keys = pipeline.planned_models(config.load(None), (1, 28, 28))
    assert list(keys) == ["cnn-p0.2", "cnn-p0.25", "cnn-p0.3", "cnn-deep5", "cnn-subset5"]
    assert keys["cnn-p0.25"] == {"label": "MC dropout p = 0.25", "dropout_p": 0.25, "method": "mc_dropout",
                                 "members": [{"seed_offset": 1, "share": 1.0, "dropout_p": 0.25}],
                                 "architecture": "mnist-cnn"}
    deep, subset = keys["cnn-deep5"], keys["cnn-subset5"]
    assert deep["dropout_p"] is None and [m["seed_offset"] for m in deep["members"]] == [100, 101, 102, 103, 104]
    assert {m["share"] for m in deep["members"]} == {1.0} and {m["share"] for m in subset["members"]} == {0.5}
    assert {m["dropout_p"] for m in deep["members"] + subset["members"]} == {0.2}  # the first rate, off at inference
    only = pipeline.planned_models(config.load(None, uncertainty__methods=("mc_dropout",)), (1, 28, 28))
    assert list(only) == ["cnn-p0.2", "cnn-p0.25", "cnn-p0.3"]
