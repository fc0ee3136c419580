"""An ensemble's members in one batched pass against a Python loop over them (issue 21).

Three ways to get M members' logits for a batch of images, each timed for inference (no gradient) and for
an attack step (the gradient of the ensemble's log mean probability with respect to the images):
- ``grouped``: what robustviz runs (compute/methods/ensemble.py): each layer of the members laid side by
  side, a grouped convolution or a batched matrix product (on the CPU in chunks of ``CPU_CHUNK`` images);
- ``grouped, whole batch``: the same without chunks;
- ``vmap``: ``torch.func.stack_module_state`` and ``vmap`` over ``functional_call``;
- ``loop``: one forward per member, the whole batch; ``loop, chunked``: the same in chunks of ``CPU_CHUNK``.
The three agree to float rounding (checked here). Usage:

    python bench/ensemble.py [--device cpu|cuda] [--members 5] [--batch 256] [--repeat 20] [--architecture mnist-cnn|alexnet]

It prints one Markdown table row per (way, task, memory layout): milliseconds per batch (median of
``--repeat``) and images per second. Results go into docs/benchmarks.md with the command.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute.methods.ensemble import CPU_CHUNK, Ensemble, loop_logits  # noqa: E402
from compute.models import build_model  # noqa: E402


def members_of(architecture: str, count: int, device: torch.device) -> list:
    shape = (1, 28, 28) if architecture == "mnist-cnn" else (3, 96, 96)
    out = []
    for k in range(count):
        torch.manual_seed(k)
        out.append(build_model(architecture, shape, tuple("0123456789"), 0.2, (0.5,) * shape[0],
                               (0.25,) * shape[0]).to(device).eval())
    return out


def vmapped(members: list):
    from torch.func import functional_call, stack_module_state, vmap

    params, buffers = stack_module_state(members)
    base = copy.deepcopy(members[0]).to("meta")
    return lambda x: vmap(lambda p, b, images: functional_call(base, (p, b), (images,)), in_dims=(0, 0, None))(
        params, buffers, x)


def timed(fn, x: torch.Tensor, grad: bool, repeat: int, device: torch.device) -> float:
    def once() -> None:
        if grad:
            xi = x.detach().requires_grad_(True)
            logits = fn(xi)
            log_mean = torch.logsumexp(torch.log_softmax(logits, dim=2), dim=0)
            (g,) = torch.autograd.grad(log_mean[:, 0].sum(), xi)
        else:
            with torch.no_grad():
                fn(x)
    once()  # warm-up
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        once()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--architecture", default="mnist-cnn", choices=("mnist-cnn", "alexnet"))
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"{args.architecture}, M = {args.members}, batch {args.batch}, torch {torch.__version__}")
    print("| way | task | layout | ms per batch | images/s |")
    print("| --- | --- | --- | ---: | ---: |")
    for layout in ("contiguous", "channels-last"):
        fmt = torch.channels_last if layout == "channels-last" else torch.contiguous_format
        members = [m.to(memory_format=fmt) for m in members_of(args.architecture, args.members, device)]
        shape = members[0].meta["image_shape"]
        x = torch.rand(args.batch, *shape, device=device).contiguous(memory_format=fmt)
        ensemble = Ensemble(members).to(device, memory_format=fmt)
        ways = {"grouped": ensemble.member_logits, "grouped, whole batch": ensemble._members,
                "vmap": vmapped(members), "loop": lambda images: loop_logits(members, images),
                "loop, chunked": lambda images: torch.cat([loop_logits(members, part)
                                                           for part in torch.split(images, CPU_CHUNK)], dim=1)}
        reference = ways["loop"](x).detach()
        for name, fn in ways.items():
            err = (fn(x).detach() - reference).abs().max().item()
            assert err < 1e-3, f"{name} differs from the loop by {err}"
            for task, grad in (("inference", False), ("attack step", True)):
                seconds = timed(fn, x, grad, args.repeat, device)
                print(f"| {name} | {task} | {layout} | {seconds * 1000:.1f} | {args.batch / seconds:,.0f} |")


if __name__ == "__main__":
    main()
