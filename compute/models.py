"""Classifiers that take images in [0, 1] and normalise inside, plus checkpoints that load safely.

Both architectures are one flat ``nn.Sequential`` of named layers (conv1, relu1, ... fc), so the
layers before the first dropout can be split off and cached for MC dropout, and activation maps
are addressed by the same names everywhere.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from .contract import file_sha256

CHECKPOINT_FORMAT = "robustviz-checkpoint"
CHECKPOINT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ALEXNET_MIN_SIZE = 63  # smaller inputs shrink to nothing before AlexNet's last pooling layer


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message says why and what to do."""


class Normalize(nn.Module):
    """(x - mean) / std per channel; repeats a grey channel when the network expects colour."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], out_channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        if x.shape[1] != self.out_channels:
            x = x.expand(-1, self.out_channels, -1, -1)
        return x


MaskSource = Callable[["KeyedDropout", torch.Tensor], torch.Tensor]  # (layer, input) -> multipliers like input


class KeyedDropout(nn.Dropout):
    """Dropout whose MC masks can come from a per-image key instead of the global RNG.

    In training it is plain dropout. Under ``uncertainty.mc_dropout(..., keys)`` it asks the
    installed mask source for its multipliers (0 dropped, 1 / (1 - p) kept), so each image's masks
    depend only on (seed, image id, layer, pass, unit): results never depend on batch composition,
    sharding, order or device.
    """

    def __init__(self, p: float, index: int) -> None:
        super().__init__(p)
        self.index = index  # position among the model's dropout layers; salts the mask keys
        self.mask_source: MaskSource | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.mask_source is None:
            return F.dropout(x, self.p, True)
        return x * self.mask_source(self, x).to(x.dtype)


class Classifier(nn.Module):
    """``layers(normalize(x))`` for x in [0, 1], shape (N, C, H, W); returns logits (N, classes).

    ``meta`` holds what the checkpoint records: architecture, dropout, class names, image shape,
    normalisation, and after training the dataset and clean test accuracy.
    """

    def __init__(self, normalize: Normalize, layers: nn.Sequential, meta: dict[str, Any]) -> None:
        super().__init__()
        self.normalize = normalize
        self.layers = layers
        self.meta = meta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.normalize(x))

    def split_at_first_dropout(self) -> tuple[nn.Module, nn.Module]:
        """(prefix, suffix) with ``suffix(prefix(x)) == self(x)``; prefix holds no dropout, so
        under MC dropout it is deterministic and can be computed once per image."""
        names = list(self.layers._modules)
        cut = next((i for i, n in enumerate(names) if isinstance(self.layers._modules[n], nn.Dropout)),
                   len(names))
        prefix = nn.Sequential(OrderedDict([("normalize", self.normalize)] +
                                           [(n, self.layers._modules[n]) for n in names[:cut]]))
        suffix = nn.Sequential(OrderedDict((n, self.layers._modules[n]) for n in names[cut:]))
        return prefix, suffix

    def conv_layers(self) -> list[str]:
        """Names of the convolution layers, in order (activation maps are taken after each)."""
        return [n for n, m in self.layers.named_children() if isinstance(m, nn.Conv2d)]

    def dropout_layers(self) -> list[KeyedDropout]:
        return [m for m in self.layers.modules() if isinstance(m, KeyedDropout)]


def mnist_cnn_layers(p: float, in_channels: int, num_classes: int, size: int) -> nn.Sequential:
    """The seed's CNN: two 5x5 conv blocks (16, 32 maps) with max-pooling and dropout, one linear layer."""
    side = size // 4
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 16, 5, stride=1, padding=2)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)), ("drop1", KeyedDropout(p, 0)),
        ("conv2", nn.Conv2d(16, 32, 5, stride=1, padding=2)), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)), ("drop2", KeyedDropout(p, 1)),
        ("flatten", nn.Flatten(1)), ("fc", nn.Linear(32 * side * side, num_classes)),
    ]))


# torchvision's AlexNet module paths -> our flat names (also maps ImageNet state-dict keys).
ALEXNET_NAMES = {"features.0": "conv1", "features.1": "relu1", "features.2": "pool1",
                 "features.3": "conv2", "features.4": "relu2", "features.5": "pool2",
                 "features.6": "conv3", "features.7": "relu3", "features.8": "conv4", "features.9": "relu4",
                 "features.10": "conv5", "features.11": "relu5", "features.12": "pool5",
                 "avgpool": "avgpool", "classifier.0": "drop6", "classifier.1": "fc6",
                 "classifier.2": "relu6", "classifier.3": "drop7", "classifier.4": "fc7",
                 "classifier.5": "relu7", "classifier.6": "fc8"}


def alexnet_layers(p: float, num_classes: int) -> nn.Sequential:
    """torchvision's ``alexnet(num_classes)`` (the reference definition), flattened and renamed,
    with its classifier dropout set to ``p``."""
    from torchvision.models import alexnet

    reference = alexnet(weights=None, num_classes=num_classes, dropout=p)
    modules = dict(reference.named_modules())
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    dropouts = 0
    for path, name in ALEXNET_NAMES.items():
        module = modules[path]
        if isinstance(module, nn.Dropout):
            module = KeyedDropout(p, dropouts)
            dropouts += 1
        elif isinstance(module, nn.ReLU):
            module = nn.ReLU()  # in-place ReLU would overwrite activations the attacks read
        layers[name] = module
        if name == "avgpool":
            layers["flatten"] = nn.Flatten(1)
    return nn.Sequential(layers)


def resolve_architecture(architecture: str, image_shape: tuple[int, int, int]) -> str:
    if architecture != "auto":
        return architecture
    return "mnist-cnn" if image_shape == (1, 28, 28) else "alexnet"


def build_model(architecture: str, image_shape: tuple[int, int, int], class_names: tuple[str, ...],
                p: float, mean: tuple[float, ...], std: tuple[float, ...]) -> Classifier:
    """A fresh classifier for images of ``image_shape`` (C, H, W) with dropout rate ``p``."""
    c, h, w = image_shape
    num_classes = len(class_names)
    if architecture == "mnist-cnn":
        if h != w or h % 4:
            raise CheckpointError(f"mnist-cnn needs square images whose side is a multiple of 4, got {h}x{w}; "
                                  f"set data.image_size (e.g. 28) or model.architecture = \"alexnet\"")
        layers, net_channels = mnist_cnn_layers(p, c, num_classes, h), c
    elif architecture == "alexnet":
        if min(h, w) < ALEXNET_MIN_SIZE:
            raise CheckpointError(f"alexnet needs images of at least {ALEXNET_MIN_SIZE}x{ALEXNET_MIN_SIZE}, got "
                                  f"{h}x{w}; set data.image_size (e.g. 96) or model.architecture = \"mnist-cnn\"")
        layers, net_channels = alexnet_layers(p, num_classes), 3
    else:
        raise CheckpointError(f"unknown architecture {architecture!r}; use mnist-cnn or alexnet")
    meta = {"architecture": architecture, "dropout": p, "class_names": list(class_names),
            "image_shape": list(image_shape), "mean": list(mean), "std": list(std)}
    return Classifier(Normalize(mean, std, net_channels), layers, meta)


def load_imagenet_weights(model: Classifier, path: str) -> int:
    """Copy torchvision AlexNet ImageNet weights from a local file into ``model``; the last layer is
    kept only if its class count matches. Returns the number of tensors loaded."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"pretrained weights {file} not found; model.pretrained must name a local "
                              f"torchvision alexnet state-dict file (offline machines cannot download it)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise CheckpointError(f"pretrained weights {file} cannot be read ({exc}); it must be a torchvision "
                              f"alexnet state dict saved with torch.save") from exc
    own = model.layers.state_dict()
    loaded = {}
    for key, tensor in state.items():
        module, _, param = key.rpartition(".")
        target = f"{ALEXNET_NAMES.get(module, module)}.{param}"
        if target in own and own[target].shape == tensor.shape:
            loaded[target] = tensor
    if not loaded:
        raise CheckpointError(f"pretrained weights {file} hold no tensor that fits alexnet; expected keys "
                              f"such as features.0.weight")
    model.layers.load_state_dict(loaded, strict=False)
    return len(loaded)


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over parameter names and values, in key order: identifies the weights, not the file."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        h.update(key.encode())
        h.update(state_dict[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(model: Classifier, path: str | Path) -> str:
    """Write weights and ``model.meta`` atomically (temp name, then rename); returns the file's sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    meta = dict(model.meta, weights_sha256=weights_sha256(state))
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "meta": meta, "state_dict": state}, tmp)
    os.replace(tmp, path)
    return file_sha256(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Classifier:
    """The classifier saved at ``path``, in eval mode, with its metadata in ``.meta``.

    Loading never unpickles arbitrary objects (``weights_only=True``), and the weights are checked
    against the sha256 recorded when they were saved.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; train one with `robustviz train`")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}); "
                              f"retrain with `robustviz train` or restore the file") from exc
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a robustviz checkpoint; train one with `robustviz train`")
    meta, state = blob["meta"], blob["state_dict"]
    if weights_sha256(state) != meta.get("weights_sha256"):
        raise CheckpointError(f"checkpoint {path} is corrupt: its weights do not match their recorded "
                              f"sha256; retrain with `robustviz train`")
    model = build_model(meta["architecture"], tuple(meta["image_shape"]), tuple(meta["class_names"]),
                        float(meta["dropout"]), tuple(meta["mean"]), tuple(meta["std"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit its recorded architecture "
                              f"{meta['architecture']}: {exc}") from exc
    model.meta = dict(meta)
    return model.eval()
