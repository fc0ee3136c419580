"""Throughput of MC dropout and each attack, batched vs one image at a time, and FGSM vs ART.

    .venv/bin/python bench/speed.py --results build/results/mnist-sample [--device auto] [--images 500]
    .venv/bin/python bench/speed.py --synthetic alexnet [--device cuda] [--images 256]

Uses a trained checkpoint of a results directory (run `robustviz demo` first) and its first
``--images`` test images; or, with ``--synthetic alexnet``, AlexNet at 96 px (STL-10's format) with
freshly initialised weights on random pixels, labelled with the model's own predictions (so every
image counts as correct before the attack): throughput does not depend on the weights, though the
searches' iteration counts do. MC dropout is also timed against the seed's loop of T single-image
passes with dropout from the global generator. Prints a Markdown table for docs/benchmarks.md;
``--json`` also writes the figures to a file.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute import config, datasets  # noqa: E402
from compute.attacks import ATTACKS, resolve  # noqa: E402
from compute.attacks.fgsm import fgsm  # noqa: E402
from compute.pixels import to_float  # noqa: E402
from compute.models import IMAGENET_MEAN, IMAGENET_STD, build_model, load_checkpoint  # noqa: E402
from compute.pipeline import resolve_device  # noqa: E402
from compute.methods.mc_dropout import mc_dropout, mc_probs  # noqa: E402


def timed(fn, device: torch.device, repeat: int = 1) -> float:  # noqa: ANN001
    """Best wall time of ``repeat`` runs of ``fn`` (synchronised on CUDA)."""
    best = float("inf")
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("build/results/mnist-sample"))
    parser.add_argument("--synthetic", choices=("alexnet",), help="untrained AlexNet, 96 px, random pixels")
    parser.add_argument("--model", default="cnn-p0.25", help="which model of the run (its key)")
    parser.add_argument("--dropout", type=float, default=0.25, help="--synthetic: the untrained model's dropout rate")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=500, help="images for the batched runs")
    parser.add_argument("--single", type=int, default=20, help="images for the one-at-a-time loops")
    parser.add_argument("--batch", type=int, default=0, help="attack batch size (0 = the run's attacks.batch_size)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if args.synthetic:
        cfg = config.RunConfig()
        shape, classes = (3, 96, 96), tuple(str(k) for k in range(10))
        torch.manual_seed(0)
        model = build_model("alexnet", shape, classes, args.dropout, IMAGENET_MEAN, IMAGENET_STD)
        n = args.images
        pixels = torch.randint(0, 256, (n, *shape), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
        x = to_float(pixels)
        source = f"untrained AlexNet p={args.dropout:g}, 96 px, random pixels"
    else:
        manifest = json.loads((args.results / "manifest.json").read_text())
        cfg = config.from_manifest(manifest)
        model = load_checkpoint(args.results / next(m["checkpoint"] for m in manifest["models"] if m["key"] == args.model))
        _, test = datasets.load(cfg.data)
        n, shape = min(args.images, len(test)), test.image_shape
        x, classes = test.floats(slice(0, n)), test.class_names
        source = f"model {args.model} of {args.results}"
    # Channels-last, as the pipeline runs it.
    model = model.to(device, memory_format=torch.channels_last).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = x.to(device)
    if args.synthetic:
        with torch.no_grad():
            y = model(x).argmax(1)
    else:
        y = test.labels[:n].to(device)
    ids = list(range(n))
    a = resolve(cfg.attacks, shape[0])
    args.batch = args.batch or a.batch_size

    def batched(fn):  # noqa: ANN001, ANN202
        def run() -> None:
            for s in range(0, n, args.batch):
                fn(x[s:s + args.batch], y[s:s + args.batch], ids[s:s + args.batch])
        return run

    def single(fn):  # noqa: ANN001, ANN202
        def run() -> None:
            for i in range(args.single):
                fn(x[i:i + 1], y[i:i + 1], ids[i:i + 1])
        return run

    run_mc = lambda xb, yb, ib: mc_probs(model, xb, ib, cfg.uncertainty.passes, 0)  # noqa: E731

    run_fgsm_one = lambda xb, yb, ib: fgsm(model, xb, yb, 0.1)  # noqa: E731
    # Each registered attack as the pipeline runs it: FGSM's budgets and smallest-epsilon search,
    # L-BFGS's smallest-c search, IAA to its stop.
    labels = {"fgsm": f"FGSM, {len(a.fgsm.eps)} ε + smallest-ε searches (minimal, confident)",
              "lbfgs": "L-BFGS (smallest-c searches, minimal and confident)", "iaa": "IAA (on to the confident point)",
              "eot_pgd": f"EOT-PGD ({len(a.eot_pgd.eps)} ε × {a.eot_pgd.steps} steps × {a.eot_pgd.masks} masks)"}

    rows = {}
    mc_batch = cfg.uncertainty.batch_size
    passes = cfg.uncertainty.passes
    rows["MC dropout (T = %d)" % passes] = n / timed(
        lambda: [run_mc(x[s:s + mc_batch], None, ids[s:s + mc_batch]) for s in range(0, n, mc_batch)], device)

    @torch.no_grad()
    def seed_loop() -> None:  # the seed's MC dropout: T passes of one image at a time, global-generator masks
        with mc_dropout(model):
            for i in range(args.single):
                torch.stack([torch.softmax(model(x[i:i + 1]), 1) for _ in range(passes)])
    rows["MC dropout, the seed's loop (T single-image passes per image)"] = args.single / timed(seed_loop, device)
    rows["FGSM, one ε"] = n / timed(batched(run_fgsm_one), device, repeat=3)
    for name, attack in ATTACKS.items():
        run = lambda xb, yb, ib, attack=attack, own=getattr(a, name): attack.run(  # noqa: E731
            model=model, images=xb, labels=yb, cfg=own)
        label = labels.get(name, name)
        if name == "fgsm":  # one gradient for all budgets: nothing to gain or lose by batching
            rows[label] = n / timed(batched(run), device)
            continue
        rows[f"{label}, batched"] = n / timed(batched(run), device)
        rows[f"{label.split(' (')[0]}, one image at a time"] = args.single / timed(single(run), device)

    try:
        import numpy as np
        from art.attacks.evasion import FastGradientMethod
        from art.estimators.classification import PyTorchClassifier

        reference = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=shape,
                                      nb_classes=len(classes), clip_values=(0.0, 1.0),
                                      device_type="gpu" if device.type == "cuda" else "cpu")
        attack = FastGradientMethod(reference, eps=0.1, norm=np.inf, batch_size=args.batch)
        xn, yn = x.cpu().numpy(), np.eye(len(classes), dtype=np.float32)[y.cpu().numpy()]
        rows["FGSM, one ε, adversarial-robustness-toolbox"] = n / timed(lambda: attack.generate(xn, y=yn), device,
                                                                        repeat=3)
    except ImportError:
        print("adversarial-robustness-toolbox is not installed: pip install -e '.[test]'", file=sys.stderr)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; python {platform.python_version()}; "
          f"{source}; {n} images (batched), {args.single} (one at a time)")
    print("| what | images/s |\n| --- | ---: |")
    for what, rate in rows.items():
        print(f"| {what} | {rate:,.1f} |")
    lb_ratio = rows[f"{labels['lbfgs']}, batched"] / rows["L-BFGS, one image at a time"]
    ia_ratio = rows[f"{labels['iaa']}, batched"] / rows["IAA, one image at a time"]
    mc_ratio = rows["MC dropout (T = %d)" % passes] / rows["MC dropout, the seed's loop (T single-image passes per image)"]
    print(f"\nbatched / one-at-a-time: L-BFGS {lb_ratio:.1f}x, IAA {ia_ratio:.1f}x; MC dropout / the seed's loop "
          f"{mc_ratio:.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "source": source, "images": n, "rates": rows,
                                         "lbfgs_ratio": lb_ratio, "iaa_ratio": ia_ratio, "mc_ratio": mc_ratio},
                                        indent=2))


if __name__ == "__main__":
    main()
