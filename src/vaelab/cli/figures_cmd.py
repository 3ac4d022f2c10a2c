"""`vaelab sample | reconstruct | interpolate | manifold | latents RUN`: one figure each, derived from the figure
declarations (`figures.FIGURES`: a figure with a `command` gets one, with its `arguments`); `vaelab report RUN`."""

from __future__ import annotations

import argparse

from vaelab.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    from vaelab import figures

    for figure in figures.FIGURES.values():
        if figure.command:
            parser = sub.add_parser(figure.command, help=figure.help)
            parser.add_argument("run_dir", metavar="RUN")
            parser.add_argument(
                "--out", metavar="FILE.png", help=f"where to write the {figure.name} (default RUN/{figure.name}.png)"
            )
            for arg in figure.arguments:
                parser.add_argument(*arg.flags, **{k: v for k, v in arg.options.items() if k != "bounds"})
            parser.set_defaults(run=draw_one, figure=figure.name)

    p = sub.add_parser("report", help="write RUN/report.html (all figures, metrics, config)")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument(
        "--no-figures", action="store_true", help="use the figures already in RUN instead of drawing them again"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_report)


def _dest(parser_flags: tuple[str, ...], options: dict) -> str:
    return options.get("dest") or parser_flags[0].lstrip("-").replace("-", "_")


def draw_one(args: argparse.Namespace) -> None:
    """Check the figure's options against their bounds, open the run, draw, print the file(s) written."""
    from vaelab import figures
    from vaelab.run import Run

    figure = figures.FIGURES[args.figure]
    options = {}
    for arg in figure.arguments:
        dest = _dest(arg.flags, arg.options)
        value = getattr(args, dest)
        if "bounds" in arg.options and value is not None:
            lo, hi = arg.options["bounds"]
            if not lo <= value <= hi:
                raise ConfigError(f"{dest}: must lie in {lo}..{hi}, got {value}")
        options[dest] = value
    drawn = figure.draw(Run.open(args.run_dir), args.out, **options)
    for path in drawn if isinstance(drawn, tuple) else (drawn,):
        print(path)


def run_report(args: argparse.Namespace) -> None:
    from vaelab import figures, report
    from vaelab.run import Run

    run = Run.open(args.run_dir)
    if not args.no_figures:
        figures.all_figures(run, args.quiet)
    print(report.run_report(run))
