"""Datasets: the embedded sample, STL-10 binary files and image folders that the tests write themselves."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from compute import datasets
from compute.config import DataConfig
from compute.datasets import DataError
from conftest import write_folder, write_mnist, write_stl10


def test_mnist_sample_split_is_stratified_deterministic_and_disjoint():
    train, test = datasets.load_mnist_sample(1000)
    again_train, again_test = datasets.load_mnist_sample(1000)
    assert (len(train), len(test)) == (4000, 1000)
    assert test.image_shape == (1, 28, 28) and test.images.dtype.__str__() == "torch.uint8"
    assert set(test.image_ids.tolist()).isdisjoint(train.image_ids.tolist())
    assert (test.image_ids == again_test.image_ids).all()
    counts = np.bincount(test.labels.numpy(), minlength=10)
    overall = np.bincount(np.concatenate([train.labels.numpy(), test.labels.numpy()]), minlength=10)
    assert np.all(np.abs(counts - overall / 5) <= 1)  # each class held out in proportion
    assert 0 < test.floats(slice(0, 5)).max() <= 1


def test_limits_take_the_first_images():
    train, test = datasets.load(DataConfig(train_limit=50, test_limit=20))
    full_train, full_test = datasets.load(DataConfig())
    assert (len(train), len(test)) == (50, 20)
    assert (test.image_ids == full_test.image_ids[:20]).all()


def test_stl10_reader_reads_the_binary_layout_without_md5(tmp_path):
    arrays = write_stl10(tmp_path)
    train, test = datasets.load(DataConfig(name="stl10", root=str(tmp_path)))
    assert test.class_names == ("airplane", "bird", "car")
    assert test.image_shape == (3, 96, 96)
    assert np.array_equal(test.images.numpy(), arrays["test"][0])
    assert np.array_equal(test.labels.numpy(), arrays["test"][1])
    assert len(train) == 6


def test_stl10_missing_or_truncated_gives_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"STL-10 not found under .*stl10_binary/train_X.bin.*--download"):
        datasets.load(DataConfig(name="stl10", root=str(tmp_path / "nowhere")))
    write_stl10(tmp_path, corrupt="test_X.bin")
    with pytest.raises(DataError, match="truncated or corrupt"):
        datasets.load(DataConfig(name="stl10", root=str(tmp_path)))


def test_mnist_missing_gives_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"MNIST not found under .*--download"):
        datasets.load(DataConfig(name="mnist", root=str(tmp_path)))


def test_imagefolder_takes_class_names_from_folders_grey_and_colour(tmp_path):
    write_folder(tmp_path / "grey", ["cat", "dog", "eel"], size=(28, 28))
    train, test = datasets.load(DataConfig(name="imagefolder", root=str(tmp_path / "grey"), test_size=6))
    assert test.class_names == ("cat", "dog", "eel")
    assert test.image_shape == (1, 28, 28) and len(test) == 6 and len(train) == 9
    assert sorted(np.bincount(test.labels.numpy()).tolist()) == [2, 2, 2]
    write_folder(tmp_path / "rgb", ["a", "b"], size=(30, 20), mode="RGB")
    _, test = datasets.load(DataConfig(name="imagefolder", root=str(tmp_path / "rgb"), test_size=4, image_size=64))
    assert test.image_shape == (3, 64, 64)


def test_imagefolder_bad_input_is_named(tmp_path):
    write_folder(tmp_path / "ok", ["a", "b"])
    (tmp_path / "ok" / "empty").mkdir()
    with pytest.raises(DataError, match=r"class folder .*empty holds no images"):
        datasets.load(DataConfig(name="imagefolder", root=str(tmp_path / "ok")))
    write_folder(tmp_path / "mixed", ["a", "b"])
    Image.new("L", (31, 31)).save(tmp_path / "mixed" / "a" / "odd.png")
    with pytest.raises(DataError, match="differ in size.*image_size"):
        datasets.load(DataConfig(name="imagefolder", root=str(tmp_path / "mixed"), test_size=2))
    with pytest.raises(DataError, match="not found"):
        datasets.load(DataConfig(name="imagefolder", root=str(tmp_path / "absent")))


def test_full_mnist_reads_torchvision_idx_files(tmp_path):
    images, labels = write_mnist(tmp_path)
    train, test = datasets.load(DataConfig(name="mnist", root=str(tmp_path)))
    assert (len(train), len(test)) == (12, 5) and test.image_shape == (1, 28, 28)
    assert np.array_equal(test.images.numpy()[:, 0], images) and np.array_equal(test.labels.numpy(), labels)


def test_full_mnist_truncated_gives_a_clear_error(tmp_path):
    write_mnist(tmp_path, corrupt=True)
    with pytest.raises(DataError, match="truncated or corrupt.*download them again"):
        datasets.load(DataConfig(name="mnist", root=str(tmp_path)))


def write_fashion(root, n=(12, 5), gz=True, layout="flat", truncate=None):
    """Fashion-MNIST's four idx files (big-endian headers, uint8 payload) for tiny train and test sets."""
    import gzip
    import struct

    folder = root if layout == "flat" else root / "FashionMNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    out = {}
    for prefix, count in (("train", n[0]), ("t10k", n[1])):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        out[prefix] = (images, labels)
        for name, data in ((f"{prefix}-images-idx3-ubyte", struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes()),
                           (f"{prefix}-labels-idx1-ubyte", struct.pack(">II", 2049, count) + labels.tobytes())):
            if truncate == name:
                data = data[:-10]
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return out


@pytest.mark.parametrize("gz,layout", [(True, "flat"), (False, "flat"), (True, "torchvision")])
def test_fashion_mnist_reads_the_idx_files_gzipped_or_not_in_either_layout(tmp_path, gz, layout):
    written = write_fashion(tmp_path, gz=gz, layout=layout)
    train, test = datasets.load(DataConfig(name="fashion-mnist", root=str(tmp_path)))
    assert (len(train), len(test), test.image_shape, test.name) == (12, 5, (1, 28, 28), "fashion-mnist")
    assert np.array_equal(test.images.numpy()[:, 0], written["t10k"][0])
    assert np.array_equal(train.labels.numpy(), written["train"][1])
    assert test.class_names[0] == "T-shirt/top" and test.class_names[9] == "Ankle boot"


def test_fashion_mnist_missing_or_truncated_says_what_and_how(tmp_path):
    with pytest.raises(DataError, match=r"expected .*train-images-idx3-ubyte\.gz.*apt-get install dataset-fashion-mnist"
                                        r".*--data-root.*--download"):
        datasets.load(DataConfig(name="fashion-mnist", root=str(tmp_path / "none")))
    write_fashion(tmp_path / "cut", truncate="t10k-images-idx3-ubyte")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz holds .* bytes .* truncated"):
        datasets.load(DataConfig(name="fashion-mnist", root=str(tmp_path / "cut")))
    write_fashion(tmp_path / "odd", n=(12, 5))
    (tmp_path / "odd" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz cannot be read"):
        datasets.load(DataConfig(name="fashion-mnist", root=str(tmp_path / "odd")))
