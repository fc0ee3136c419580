"""Bad input: a clear message naming the problem and the fix, exit code 2, and no partial output."""
from __future__ import annotations

import shutil

import pytest
import torch

from compute import cli, config
from compute.models import build_model, load_checkpoint, save_checkpoint
from conftest import to_toml, write_folder, write_stl10


@pytest.fixture
def run_dir(tiny_run, tmp_path):
    """A copy of the tiny run's config and checkpoints in a fresh output folder; returns (toml, cfg)."""
    cfg = config.from_dict({**tiny_run.to_dict(), "out": str(tmp_path / "out")})
    shutil.copytree(tiny_run.results_dir / "models", cfg.results_dir / "models")
    toml = tmp_path / "run.toml"
    toml.write_text(to_toml(cfg.to_dict()))
    return toml, cfg


def fails(capsys, *argv: str, match: str) -> str:
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("robustviz: error: ") and "Traceback" not in err
    assert match in err, err
    return err


def no_results(cfg: config.RunConfig) -> None:
    assert not (cfg.results_dir / "manifest.json").exists()
    assert not (cfg.results_dir / "images.parquet").exists()
    assert not list((cfg.results_dir / "parts").glob("p*/*/shard-*"))  # a missing folder globs to nothing


def test_truncated_checkpoint(run_dir, capsys):
    toml, cfg = run_dir
    path = cfg.results_dir / "models" / "cnn-p0.2.pt"
    path.write_bytes(path.read_bytes()[:1000])
    fails(capsys, "compute", "--config", str(toml), "--quiet", match="p0.2.pt is truncated or corrupt")
    no_results(cfg)


def test_checkpoint_of_another_architecture(run_dir, capsys, tmp_path):
    toml, cfg = run_dir
    text = toml.read_text().replace('architecture = "auto"', 'architecture = "alexnet"')
    (tmp_path / "alex.toml").write_text(text)
    # The model's key names its architecture: an alexnet run looks for alexnet-p0.2.pt, and says what is there.
    err = fails(capsys, "compute", "--config", str(tmp_path / "alex.toml"), "--quiet",
                match="no checkpoint for model alexnet-p0.2 (MC dropout p = 0.2)")
    assert "models/ holds cnn-p0.2.pt, cnn-p0.3.pt: trained with another config" in err
    no_results(cfg)


def test_checkpoint_with_another_class_count(run_dir, capsys, tmp_path):
    toml, cfg = run_dir
    write_folder(tmp_path / "three", ["a", "b", "c"], n=4, size=(28, 28))
    text = toml.read_text().replace('name = "mnist-sample"', 'name = "imagefolder"').replace(
        'root = "data"', f'root = "{tmp_path / "three"}"').replace("test_size = 1000", "test_size = 3")
    (tmp_path / "three.toml").write_text(text)
    fails(capsys, "compute", "--config", str(tmp_path / "three.toml"), "--quiet",
          match="was trained on classes ['0', '1'")
    no_results(cfg)


def test_checkpoint_with_another_input_shape(run_dir, capsys, tmp_path):
    toml, cfg = run_dir
    model = build_model("alexnet", (3, 96, 96), tuple(str(i) for i in range(10)), 0.2, (0.5,) * 3, (0.2,) * 3)
    save_checkpoint(model, cfg.results_dir / "models" / "cnn-p0.2.pt")
    fails(capsys, "compute", "--config", str(toml), "--quiet", match="expects images of shape [3, 96, 96]")
    no_results(cfg)


def test_missing_dataset(run_dir, capsys, tmp_path):
    toml, cfg = run_dir
    fails(capsys, "train", "--config", str(toml), "--dataset", "stl10", "--data-root", str(tmp_path / "none"),
          "--quiet", match="expected stl10_binary/train_X.bin; download it with --download")


def test_truncated_dataset(run_dir, capsys, tmp_path):
    toml, cfg = run_dir
    write_stl10(tmp_path / "stl", corrupt="train_X.bin")
    fails(capsys, "train", "--config", str(toml), "--dataset", "stl10", "--data-root", str(tmp_path / "stl"),
          "--quiet", match="train_X.bin is truncated or corrupt")


def test_images_of_different_sizes(run_dir, capsys, tmp_path):
    toml, _ = run_dir
    write_folder(tmp_path / "mixed", ["a", "b"], n=3, size=(28, 28))
    write_folder(tmp_path / "more", ["a"], n=1, size=(30, 30))
    shutil.copy(next((tmp_path / "more" / "a").iterdir()), tmp_path / "mixed" / "a" / "big.png")
    fails(capsys, "train", "--config", str(toml), "--dataset", "imagefolder", "--data-root", str(tmp_path / "mixed"),
          "--quiet", match="set data.image_size")


def test_empty_image_folder_and_empty_class(run_dir, capsys, tmp_path):
    toml, _ = run_dir
    (tmp_path / "empty").mkdir()
    fails(capsys, "train", "--config", str(toml), "--dataset", "imagefolder", "--data-root", str(tmp_path / "empty"),
          "--quiet", match="has 0 class sub-folders; it needs at least two")
    write_folder(tmp_path / "one", ["a", "b"], n=3)
    (tmp_path / "one" / "c").mkdir()
    fails(capsys, "train", "--config", str(toml), "--dataset", "imagefolder", "--data-root", str(tmp_path / "one"),
          "--quiet", match="holds no images")


@pytest.mark.parametrize("section,text,match", [
    ("", "colour = 1", "unknown config key 'colour'"),
    ("", '[attacks]\nenabled = ["deepfool"]', "unknown attack 'deepfool'"),
    ("", '[data]\nname = "cifar10"', "data.name must be one of"),
    ("", "[attacks.fgsm]\neps = [0.1, -0.05]", "eps values must be >= 0"),
    ("", "[uncertainty]\npasses = 0", "passes must be >= 1"),
    ("", "[model]\ndropout = [0.2, 1.5]", "rates must lie in [0, 1)"),
])
def test_bad_config_values(capsys, tmp_path, section, text, match):
    (tmp_path / "bad.toml").write_text(text)
    fails(capsys, "compute", "--config", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "out"), match=match)
    assert not (tmp_path / "out").exists()


def test_output_folder_that_is_a_file_or_not_writable(capsys, tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    fails(capsys, "train", "--out", str(tmp_path / "taken"), "--quiet", match="is a file, not a folder")
    fails(capsys, "train", "--out", "/proc/robustviz-cannot-write", "--quiet", match="cannot write to output folder")


def test_nan_logits_name_the_images_and_write_no_result(run_dir, capsys):
    toml, cfg = run_dir
    model = load_checkpoint(cfg.results_dir / "models" / "cnn-p0.3.pt")
    with torch.no_grad():
        model.layers.fc.bias[3] = float("nan")
    save_checkpoint(model, cfg.results_dir / "models" / "cnn-p0.3.pt")
    err = fails(capsys, "compute", "--config", str(toml), "--quiet", match="NaN or infinite logits for image ids [")
    assert "check the checkpoint" in err
    assert not (cfg.results_dir / "manifest.json").exists()
    assert not list((cfg.results_dir / "parts").glob("p0.3/*/shard-*"))  # nothing of the broken model kept
