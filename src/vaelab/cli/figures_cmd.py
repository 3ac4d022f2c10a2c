"""`vaelab sample | reconstruct | interpolate | manifold | latents | report RUN`: one figure (or the report) each."""

from __future__ import annotations

import argparse


def _common(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("run_dir", metavar="RUN")
    parser.add_argument("--out", metavar="FILE.png", help=f"where to write the {what} (default RUN/{what}.png)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="grid of images decoded from a fixed batch of z ~ N(0, I)")
    _common(p, "samples")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, help="noise seed (default: the run's seed, as in its training figures)")
    p.add_argument("--sampler", default="prior", help="prior (default), or a fitted sampler (gmm: vaelab fit-sampler)")
    p.add_argument("--label", type=int, help="a conditional kind (cvae): draw this class")
    p.set_defaults(run=run_sample)

    p = sub.add_parser("reconstruct", help="test images above their reconstructions")
    _common(p, "reconstructions")
    p.add_argument("--n", type=int, default=20)
    p.set_defaults(run=run_reconstruct)

    p = sub.add_parser("interpolate", help="interpolations between test images through the latent space")
    _common(p, "interpolation")
    p.add_argument(
        "--pair",
        type=int,
        nargs=2,
        action="append",
        metavar=("I", "J"),
        help="test image indices; repeat for several pairs",
    )
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--spherical", action="store_true", help="spherical (slerp) instead of linear interpolation")
    p.set_defaults(run=run_interpolate)

    p = sub.add_parser("manifold", help="decode a regular grid of latent points")
    _common(p, "manifold")
    p.add_argument("--range", type=float, nargs=2, default=(-1.5, 1.5), metavar=("LO", "HI"))
    p.add_argument("--n", type=int, default=15, help="grid side (default 15)")
    p.add_argument(
        "--dims",
        type=int,
        nargs=2,
        metavar=("I", "J"),
        help="latent dimensions of the plane (others at 0); default: the principal plane",
    )
    p.set_defaults(run=run_manifold)

    p = sub.add_parser("latents", help="test posterior means by label, and KL per dimension")
    _common(p, "latents")
    p.set_defaults(run=run_latents)

    p = sub.add_parser("report", help="write RUN/report.html (all figures, metrics, config)")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument(
        "--no-figures", action="store_true", help="use the figures already in RUN instead of drawing them again"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_report)


def _open(args):
    from vaelab.run import Run

    return Run.open(args.run_dir)


def _check_n(n: int, lo: int, hi: int, name: str = "n") -> None:
    from vaelab.errors import ConfigError

    if not lo <= n <= hi:
        raise ConfigError(f"{name}: must lie in {lo}..{hi}, got {n}")


def run_sample(args) -> None:
    from vaelab import figures

    _check_n(args.n, 1, 1024)
    print(figures.samples(_open(args), args.out, args.n, args.seed, sampler=args.sampler, label=args.label))


def run_reconstruct(args) -> None:
    from vaelab import figures

    _check_n(args.n, 1, 200)
    print(figures.reconstructions(_open(args), args.out, args.n))


def run_interpolate(args) -> None:
    from vaelab import figures

    _check_n(args.steps, 2, 100, "steps")
    pairs = [tuple(p) for p in args.pair] if args.pair else None
    print(figures.interpolation(_open(args), args.out, pairs, args.steps, args.spherical))


def run_manifold(args) -> None:
    from vaelab import figures

    print(figures.manifold(_open(args), args.out, args.range[0], args.range[1], args.n, args.dims))


def run_latents(args) -> None:
    from vaelab import figures

    for path in figures.latents(_open(args), args.out):
        print(path)


def run_report(args) -> None:
    from vaelab import figures, report

    run = _open(args)
    if not args.no_figures:
        figures.all_figures(run, args.quiet)
    print(report.run_report(run))
