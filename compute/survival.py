"""Does an adversarial survive? The minimal and confident adversarials judged afresh (numpy and
PIL; ``judge`` is handed the models' predictions by compute/units.py).

The seed claims that IAA's adversarials are more robust than FGSM's and L-BFGS's. An adversarial
*survives* a transformation when the model, dropout off, still gets the transformed 8-bit image wrong:
- ``jpeg75``: Pillow's JPEG at quality 75, decoded again;
- ``gaussian0.05``: Gaussian noise of SD 0.05 (pixel range [0, 1]) added, clipped, rounded to 8 bits,
  seeded per (seed, image id);
- ``median3``: Pillow's 3×3 median filter, per channel;
- ``transfer``: the adversarial, untouched, shown to another model of the run, among the images whose
  original that model gets right.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

JPEG_QUALITY = 75
NOISE_SIGMA = 0.05
MEDIAN_SIZE = 3
TRANSFER = "transfer"
SETTINGS = {"jpeg_quality": JPEG_QUALITY, "noise_sigma": NOISE_SIGMA, "median_size": MEDIAN_SIZE}  # the part key's


def _pil(image: np.ndarray) -> Image.Image:
    """One uint8 (C, H, W) image as a Pillow image (mode L or RGB)."""
    return Image.fromarray(image[0], "L") if image.shape[0] == 1 else Image.fromarray(image.transpose(1, 2, 0), "RGB")


def _array(image: Image.Image, channels: int) -> np.ndarray:
    a = np.asarray(image, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def jpeg(images: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """Each uint8 (N, C, H, W) image saved as JPEG at ``quality`` and read back."""
    out = np.empty_like(images)
    for k, image in enumerate(images):
        buffer = io.BytesIO()
        _pil(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        out[k] = _array(Image.open(buffer).convert("L" if image.shape[0] == 1 else "RGB"), image.shape[0])
    return out


def gaussian(images: np.ndarray, image_ids: np.ndarray, seed: int, sigma: float = NOISE_SIGMA) -> np.ndarray:
    """Each image plus Gaussian noise of SD ``sigma`` (in [0, 1] units), clipped and rounded to 8 bits;
    the noise of an image depends only on (seed, image id), so any sharding draws the same."""
    out = np.empty_like(images)
    for k, (image, image_id) in enumerate(zip(images, image_ids)):
        rng = np.random.default_rng([seed, int(image_id), 5])
        noisy = image / 255.0 + rng.normal(0.0, sigma, size=image.shape)
        out[k] = np.clip(np.round(noisy * 255.0), 0, 255).astype(np.uint8)
    return out


def median(images: np.ndarray, size: int = MEDIAN_SIZE) -> np.ndarray:
    """Each image through Pillow's ``size`` × ``size`` median filter (per channel)."""
    return np.stack([_array(_pil(image).filter(ImageFilter.MedianFilter(size)), image.shape[0])
                     for image in images]) if len(images) else images.copy()


# Each transformation by name: (uint8 images, their ids, seed) -> uint8 images.
TRANSFORM_FUNCTIONS = {f"jpeg{JPEG_QUALITY}": lambda images, ids, seed: jpeg(images),
                       f"gaussian{NOISE_SIGMA:g}": gaussian,
                       f"median{MEDIAN_SIZE}": lambda images, ids, seed: median(images)}
TRANSFORMS = tuple(TRANSFORM_FUNCTIONS)


def transformed(name: str, images: np.ndarray, image_ids: np.ndarray, seed: int) -> np.ndarray:
    """The images after transformation ``name`` (one of TRANSFORMS)."""
    if name not in TRANSFORM_FUNCTIONS:
        raise KeyError(f"unknown transformation {name!r}; one of {', '.join(TRANSFORMS)}")
    return TRANSFORM_FUNCTIONS[name](images, image_ids, seed)


def judge(model: str, models: list[str], adversarials: np.ndarray, at: np.ndarray, image_ids: np.ndarray,
          originals: np.ndarray, labels: np.ndarray, predict, seed: int,
          judged_on: dict[str, np.ndarray] | None = None) -> dict[str, list]:
    """Survival rows (image_id, transform, target, pred, fooled) of ``model``'s successful adversarials
    (uint8, at positions ``at`` among ``originals`` and ``labels``): each transformation judged by
    ``model``, and ``transfer`` by every other of ``models``, on the images whose original it gets right
    (and, for a target in ``judged_on``, only the image ids listed there: an ensemble judges the images
    it was itself attacked on). ``predict(key, pixels, at)``: model ``key``'s dropout-off predictions of
    the images at ``at``."""
    rows: dict[str, list] = {"image_id": [], "transform": [], "target": [], "pred": [], "fooled": []}
    y = labels[at]

    def add(transform: str, target: str, mask: np.ndarray, pred: np.ndarray) -> None:
        rows["image_id"] += image_ids[mask].tolist()
        rows["transform"] += [transform] * int(mask.sum())
        rows["target"] += [target] * int(mask.sum())
        rows["pred"] += pred.tolist()
        rows["fooled"] += (pred != y[mask]).tolist()
    everyone = np.ones(len(at), dtype=bool)
    for name in TRANSFORMS:
        add(name, model, everyone, predict(model, transformed(name, adversarials, image_ids, seed), at))
    for other in models:
        if other != model:
            right = np.zeros(len(at), dtype=bool)
            seen = everyone if judged_on is None or other not in judged_on else np.isin(image_ids, judged_on[other])
            if seen.any():
                right[seen] = predict(other, originals[at[seen]], at[seen]) == y[seen]
            add(TRANSFER, other, right, predict(other, adversarials[right], at[right]))
    return rows
