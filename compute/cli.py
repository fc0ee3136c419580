"""The ``robustviz`` command: demo, train, compute, build, serve."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .attacks import ATTACKS
from .config import DATASETS, DEVICES, ConfigError, RunConfig, load


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.toml", help="TOML config; its values are saved in the manifest")
    p.add_argument("--out", metavar="DIR", help="output root: results in DIR/results/<run>, site in DIR/site "
                                                "(default build)")
    p.add_argument("--device", choices=DEVICES, help="where to compute (default auto)")
    p.add_argument("--dataset", choices=DATASETS, help="dataset (default mnist-sample, embedded and offline)")
    p.add_argument("--attack", action="append", choices=tuple(ATTACKS), metavar="NAME",
                   help=f"run this attack (repeat for several; default all: {', '.join(ATTACKS)})")
    p.add_argument("--data-root", metavar="DIR", help="folder holding the dataset's files")
    p.add_argument("--download", action="store_true", default=None,
                   help="let torchvision download mnist, fashion-mnist or stl10 if missing")
    p.add_argument("--ood", metavar="SET", help="out-of-distribution images every model scores: letters (default; "
                                                 "rendered, offline), a dataset other than the run's, or \"\" for none")
    p.add_argument("--name", help="run name (folder under results/)")
    p.add_argument("--seed", type=int, help="seed for training, dropout masks and attacks")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes computing parts side by side (default 0 = auto: up to 2 on a CPU, 1 on a GPU or "
                        "for a test set of one attack batch)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _config(args: argparse.Namespace) -> RunConfig:
    return load(args.config, out=args.out, device=args.device, name=args.name, seed=args.seed, workers=args.workers,
                data__name=args.dataset, data__root=args.data_root, data__download=args.download, ood__dataset=args.ood,
                attacks__enabled=tuple(args.attack) if args.attack else None)


def _build_site(results: list[Path], site: Path) -> str:
    from site_builder.build import build_site

    from .assemble import assemble
    from .parts import PARTS_DIR

    start = time.perf_counter()
    for path in results:
        # A sharded run whose shards all finished but never assembled (e.g. run on several machines).
        if not (path / "manifest.json").is_file() and (path / PARTS_DIR).is_dir():
            assemble(path)
    report = build_site(results, site)
    return (f"build: {report.runs} run(s), {report.pages} pages, {report.files} files, "
            f"{report.bytes / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s -> {site / 'index.html'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robustviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train, compute and build the site on the embedded MNIST sample")
    _add_run_options(demo)
    _add_run_options(sub.add_parser("train", help="train one model per dropout rate"))
    compute = sub.add_parser("compute", help="MC dropout and attacks on every test image; writes tables and tiles "
                                             "(re-runs reuse finished parts)")
    _add_run_options(compute)
    compute.add_argument("--shard", metavar="K/N", help="compute only shard K of N (a disjoint slice of the test "
                                                        "images); the last shard to finish assembles the results")
    build = sub.add_parser("build", help="build the static site from one or more results directories")
    build.add_argument("results", nargs="*", type=Path, metavar="RESULTS",
                       help="results/<run> directories (default: the run of --config)")
    build.add_argument("--out", type=Path, metavar="SITE", help="site folder (default: <out>/site of --config)")
    build.add_argument("--config", metavar="FILE.toml", help="run config whose results and site folders are the defaults")
    serve = sub.add_parser("serve", help="preview a built site over HTTP")
    serve.add_argument("site", type=Path, nargs="?", metavar="SITE", help="site folder (default: <out>/site of --config)")
    serve.add_argument("--config", metavar="FILE.toml", help="run config whose site folder is the default")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    args = parser.parse_args(argv)
    if args.command in ("demo", "train", "compute"):
        from .workers import set_process_env

        set_process_env()  # memory settings PyTorch reads once: before anything imports it

    from site_builder.load import ResultsError

    from .assemble import IncompleteError
    from .datasets import DataError
    from .parts import ShardError
    from .models import CheckpointError
    from .methods.mc_dropout import NumericsError

    user_errors = (ConfigError, DataError, CheckpointError, NumericsError, ResultsError, IncompleteError, ShardError,
                   FileNotFoundError, NotADirectoryError, PermissionError)
    try:
        if args.command in ("demo", "train", "compute"):
            cfg = _config(args)
            from . import pipeline

            if args.command in ("demo", "train"):
                print(pipeline.train_all(cfg, progress=not args.quiet).line(), flush=True)
            if args.command in ("demo", "compute"):
                from .parts import parse_shard

                shard = parse_shard(getattr(args, "shard", None))
                command = ["robustviz", *(sys.argv[1:] if argv is None else argv)]
                print(pipeline.compute(cfg, progress=not args.quiet, shard=shard, command=command).line(), flush=True)
            if args.command == "demo":
                print(_build_site([cfg.results_dir], cfg.site_dir), flush=True)
        elif args.command == "build":
            cfg = load(args.config)
            print(_build_site(args.results or [cfg.results_dir], args.out or cfg.site_dir), flush=True)
        elif args.command == "serve":
            from site_builder.serve import serve as serve_site

            serve_site(args.site or load(args.config).site_dir, args.host, args.port)
    except user_errors as exc:  # bad input: one clear line, no traceback
        print(f"robustviz: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robustviz: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
