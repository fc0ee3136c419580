"""What keyed, counter-based dropout masks cost against plain dropout from the global generator.

    .venv/bin/python bench/mc_masks.py [--device cpu] [--images 512] [--repeat 3]

Both sides run MC dropout the way the pipeline does: models in channels-last, the layers before the
first dropout once per image (the cached path), ``uncertainty.batch_size`` images per mask context
and ``CPU_CHUNK`` images per forward on the CPU, 50 passes, one condition (the clean images, so the
keyed masks are made once per image and never reused: their worst case). Untrained weights: the
cost of a forward does not depend on them. Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute.config import UncertaintyConfig  # noqa: E402
from compute.masks import dropout_masks  # noqa: E402
from compute.models import build_model  # noqa: E402
from compute.pipeline import resolve_device  # noqa: E402
from compute.methods.mc_dropout import CPU_CHUNK, _forward, mc_dropout, mc_probs  # noqa: E402

MODELS = {"MNIST CNN, 28 px": ("mnist-cnn", (1, 28, 28)), "AlexNet, 96 px": ("alexnet", (3, 96, 96))}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def plain_dropout(model: torch.nn.Module, x: torch.Tensor, passes: int, batch: int) -> None:
    """The same cached path with masks from the global generator (``F.dropout``)."""
    step = CPU_CHUNK if x.device.type == "cpu" else batch
    for s in range(0, len(x), batch):
        with mc_dropout(model):
            for c in range(s, min(s + batch, len(x)), step):
                torch.softmax(_forward(model, x[c:min(c + step, s + batch)], passes, True), dim=2)


def keyed_dropout(model: torch.nn.Module, x: torch.Tensor, passes: int, batch: int) -> None:
    for s in range(0, len(x), batch):
        mc_probs(model, x[s:s + batch], list(range(s, min(s + batch, len(x)))), passes, seed=0)


def best(fn, device: torch.device, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=512, help="MNIST images (AlexNet gets a quarter)")
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs, interleaved")
    args = parser.parse_args()
    device = resolve_device(args.device)
    unc = UncertaintyConfig()
    classes = tuple(str(i) for i in range(10))
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU ({torch.get_num_threads()} threads)'}; "
          f"torch {torch.__version__}; python {platform.python_version()}; T = {unc.passes}, p = {args.dropout:g}, "
          f"{unc.batch_size} images per mask context")
    print("| model | images | plain dropout (global generator), s | keyed counter-based masks, s | overhead | "
          "making the masks alone, s |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, (arch, shape) in MODELS.items():
        torch.manual_seed(0)
        model = build_model(arch, shape, classes, args.dropout, (0.5,) * shape[0], (0.25,) * shape[0])
        model = model.to(device, memory_format=torch.channels_last).eval()
        n = args.images if arch == "mnist-cnn" else max(args.images // 4, unc.batch_size)
        x = torch.rand((n, *shape), generator=torch.Generator().manual_seed(1)).to(device)
        keyed_dropout(model, x[:unc.batch_size], unc.passes, unc.batch_size)  # warm up both paths
        plain_dropout(model, x[:unc.batch_size], unc.passes, unc.batch_size)
        plain, keyed = [], []
        for _ in range(args.repeat):  # interleaved, so that drifts in the machine's speed hit both
            plain.append(best(lambda: plain_dropout(model, x, unc.passes, unc.batch_size), device, 1))
            keyed.append(best(lambda: keyed_dropout(model, x, unc.passes, unc.batch_size), device, 1))
        shapes = dropout_shapes(model, x[:1])
        masks_only = best(lambda: [dropout_masks(torch.arange(s, min(s + unc.batch_size, n), device=device),
                                                 unc.passes, f, args.dropout, 0, i)
                                   for s in range(0, n, unc.batch_size) for i, f in enumerate(shapes)],
                          device, args.repeat)
        p, k = min(plain), min(keyed)
        print(f"| {label} | {n} | {p:.2f} | {k:.2f} | {100 * (k / p - 1):+.1f}% | {masks_only:.2f} |")


def dropout_shapes(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """The (C, H, W) or (F,) input shape of each dropout layer, in order."""
    shapes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_pre_hook(lambda m, inp: shapes.append(tuple(inp[0].shape[1:])))
             for m in model.dropout_layers()]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return shapes


if __name__ == "__main__":
    main()
