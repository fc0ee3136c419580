"""Counter-based MC-dropout masks, made with integer tensor ops on the device of the activations.

Unit u of pass t of image i in dropout layer l is kept or dropped by a pure function of
(seed, i, l, t, u): nothing is drawn from a generator's state, so an image's masks do not depend on
its batch, its shard, the order of work or the device, and no mask is ever copied from the host.

The function is SplitMix64 (Steele, Lea & Flood, OOPSLA 2014) used as a counter-based generator:
  key(seed, i, l) = mix(mix(s + G (i + 1)) + G (l + 1)),  s = 64 bits of SHA-256("robustviz-mc:<seed>")
  word(j)         = mix(key + G (j + 1)),                 j = t * ceil(U / 2) + u // 2
where mix is SplitMix64's finaliser and G = 0x9E3779B97F4A7C15, all arithmetic modulo 2^64. Each 64-bit
word gives two units: its low 32 bits unit 2j, its high 32 bits unit 2j + 1 (U units per layer, in the
layer's logical C x H x W order). A unit is kept when its 32 bits, read as a signed integer v, satisfy
v + 2^31 >= ceil(p * 2^32): the realised dropout rate is p to within 2^-32.

torch has no unsigned 64-bit arithmetic on every device, so the words live in int64: multiplication
and addition wrap the same way, and a logical right shift is an arithmetic one with the sign bits
masked off. Integer ops are exact, so CPU and CUDA give the same bits.
"""
from __future__ import annotations

import hashlib
import math
from typing import Sequence

import torch

GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's increment, 2^64 / golden ratio
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
CPU_WORDS = 1 << 17  # words hashed per step on the CPU: the temporaries stay in cache (measured fastest)
DEVICE_WORDS = 1 << 26  # on an accelerator: few, large kernels


def signed64(value: int) -> int:
    """``value`` modulo 2^64 as the int64 with the same bits."""
    value %= 1 << 64
    return value - (1 << 64) if value >= 1 << 63 else value


def mix_(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser on an int64 tensor, in place (and returned)."""
    z.bitwise_xor_((z >> 30) & ((1 << 34) - 1)).mul_(signed64(MIX1))
    z.bitwise_xor_((z >> 27) & ((1 << 37) - 1)).mul_(signed64(MIX2))
    return z.bitwise_xor_((z >> 31) & ((1 << 33) - 1))


def seed_word(seed: int | str) -> int:
    """The 64-bit word a run's seed (an int or a label such as ``eot-pgd:0:0.1:3``) stands for."""
    return signed64(int.from_bytes(hashlib.sha256(f"robustviz-mc:{seed}".encode()).digest()[:8], "little"))


def layer_keys(image_ids: torch.Tensor, seed: int | str, layer: int) -> torch.Tensor:
    """key(seed, i, l) for every id in ``image_ids`` (int64, on any device); same shape and device."""
    k = mix_(image_ids.to(torch.int64) * signed64(GOLDEN) + signed64(seed_word(seed) + GOLDEN))
    return mix_(k.add_(signed64(GOLDEN * (layer + 1))))


def keep_threshold(p: float) -> int:
    """Units whose 32 bits read as a signed integer reach this are kept: P(keep) = 1 - p to 2^-32."""
    return min(math.ceil(p * 2 ** 32), 2 ** 32 - 1) - 2 ** 31


def dropout_masks(image_ids: torch.Tensor | Sequence[int], passes: int, features: tuple[int, ...], p: float,
                  seed: int | str, layer: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Dropout multipliers (passes, B, *features), float32: 0 where dropped, 1 / (1 - p) where kept.

    Made on ``device`` (default: that of ``image_ids`` when it is a tensor, else the CPU). The loop
    runs over blocks of passes, never over images.
    """
    ids = torch.as_tensor(image_ids, dtype=torch.int64, device=device)
    units = math.prod(features)
    words = (units + 1) // 2
    keys = layer_keys(ids, seed, layer).view(1, -1, 1)
    counters = torch.arange(1, passes * words + 1, dtype=torch.int64, device=ids.device).mul_(signed64(GOLDEN))
    counters = counters.view(passes, 1, words)
    out = torch.empty((passes, len(ids), units), dtype=torch.float32, device=ids.device)
    budget = CPU_WORDS if ids.device.type == "cpu" else DEVICE_WORDS
    step = max(1, budget // max(1, len(ids) * words))
    threshold, scale = keep_threshold(p), 1.0 / (1.0 - p)
    for t in range(0, passes, step):
        z = mix_(counters[t:t + step] + keys)
        # Two 32-bit units per word: the int32 view puts the low half first (little-endian, as on every
        # device torch runs on).
        halves = z.view(torch.int32).view(z.shape[0], len(ids), 2 * words)[..., :units]
        torch.mul(halves >= threshold, scale, out=out[t:t + step])
    return out.view(passes, len(ids), *features)
