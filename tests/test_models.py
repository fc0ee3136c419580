"""Models and checkpoints: normalisation inside, safe loading, AlexNet from torchvision's definition."""
from __future__ import annotations

import pytest
import torch
from torchvision.models import alexnet

from compute.models import (CheckpointError, build_model, load_checkpoint, load_imagenet_weights,
                            save_checkpoint)

CLASSES = tuple("abcdefghij")


def test_mnist_cnn_has_the_seeds_layers():
    net = build_model("mnist-cnn", (1, 28, 28), CLASSES, 0.25, (0.13,), (0.31,))
    names = [n for n, _ in net.layers.named_children()]
    assert names == ["conv1", "relu1", "pool1", "drop1", "conv2", "relu2", "pool2", "drop2", "flatten", "fc"]
    assert net.layers.conv1.out_channels == 16 and net.layers.conv2.out_channels == 32
    assert net.layers.conv1.kernel_size == (5, 5) and net.layers.conv1.padding == (2, 2)
    assert net.layers.fc.in_features == 32 * 7 * 7 and net.layers.drop1.p == 0.25
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_normalisation_lives_inside_the_model():
    net = build_model("mnist-cnn", (1, 28, 28), CLASSES, 0.0, (0.5,), (0.25,)).eval()
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(net(x), net.layers((x - 0.5) / 0.25))


def test_alexnet_matches_torchvision_and_splits_at_its_classifier_dropout():
    net = build_model("alexnet", (3, 96, 96), CLASSES, 0.3, (0.5,) * 3, (0.2,) * 3).eval()
    ref = alexnet(num_classes=10)
    ours = sorted(tuple(t.shape) for t in net.layers.state_dict().values())
    theirs = sorted(tuple(t.shape) for t in ref.state_dict().values())
    assert ours == theirs
    assert [m.p for m in net.dropout_layers()] == [0.3, 0.3]
    prefix, suffix = net.split_at_first_dropout()
    assert not any(isinstance(m, torch.nn.Dropout) for m in prefix.modules())
    x = torch.rand(2, 3, 96, 96)
    assert torch.allclose(suffix(prefix(x)), net(x))
    assert net.conv_layers() == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    grey = build_model("alexnet", (1, 64, 64), CLASSES, 0.5, (0.5,), (0.2,))
    assert grey(torch.rand(2, 1, 64, 64)).shape == (2, 10)
    with pytest.raises(CheckpointError, match="at least 63x63"):
        build_model("alexnet", (1, 28, 28), CLASSES, 0.5, (0.5,), (0.2,))


def test_imagenet_weights_load_from_a_local_torchvision_file(tmp_path):
    ref = alexnet(num_classes=1000)
    torch.save(ref.state_dict(), tmp_path / "alexnet.pth")
    net = build_model("alexnet", (3, 96, 96), CLASSES, 0.5, (0.5,) * 3, (0.2,) * 3)
    loaded = load_imagenet_weights(net, str(tmp_path / "alexnet.pth"))
    assert loaded == 14  # 7 weight/bias pairs; the 1000-class head does not fit 10 classes
    assert torch.equal(net.layers.conv1.weight, ref.features[0].weight)
    assert torch.equal(net.layers.fc7.weight, ref.classifier[4].weight)
    with pytest.raises(CheckpointError, match="not found"):
        load_imagenet_weights(net, str(tmp_path / "missing.pth"))


def test_checkpoint_round_trip_returns_an_eval_model_with_metadata(tmp_path):
    net = build_model("mnist-cnn", (1, 28, 28), CLASSES, 0.2, (0.1,), (0.3,))
    net.meta["accuracy"] = 0.9
    digest = save_checkpoint(net, tmp_path / "m.pt")
    back = load_checkpoint(tmp_path / "m.pt")
    assert len(digest) == 64 and not back.training
    assert back.meta["class_names"] == list(CLASSES) and back.meta["dropout"] == 0.2
    assert back.meta["accuracy"] == 0.9
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(back(x), net.eval()(x))
    assert not list(tmp_path.glob("*.tmp*"))


def test_corrupt_truncated_or_foreign_checkpoints_are_refused(tmp_path):
    net = build_model("mnist-cnn", (1, 28, 28), CLASSES, 0.2, (0.1,), (0.3,))
    save_checkpoint(net, tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "short.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "short.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a robustviz checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    blob["state_dict"]["layers.fc.bias"] += 1
    torch.save(blob, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="do not match their recorded sha256"):
        load_checkpoint(tmp_path / "tampered.pt")


class Payload:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_loading_never_unpickles_arbitrary_objects(tmp_path, capsys):
    torch.save({"format": "robustviz-checkpoint", "payload": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pt")
    assert "unpickled!" not in capsys.readouterr().out
