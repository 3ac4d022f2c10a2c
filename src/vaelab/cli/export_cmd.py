"""`vaelab export RUN --format onnx --out DIR`: the run's encoder and decoder as ONNX files, checked with
onnxruntime, and export.json describing them. `vaelab export RUN [RUN...] --html page.html`: the explorer as one
self-contained HTML file (vaelab.explorer.static_page)."""

from __future__ import annotations

import argparse

from vaelab.export import FORMATS, TOLERANCE


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="write a run's encoder and decoder as ONNX files (pip install 'vaelab[onnx]')",
        description="Export the run's networks (encoder: image -> mu, logvar; decoder: z -> image in [0, 1]) with a "
        "dynamic batch axis, check them with onnxruntime against PyTorch (within "
        f"{TOLERANCE:g}), and describe them in DIR/export.json.",
    )
    parser.add_argument("run_dir", metavar="RUN", nargs="*", help="the run (several with --html: side by side)")
    parser.add_argument("--demo", action="store_true", help="with --html: the two small runs shipped with vaelab")
    parser.add_argument("--format", default="onnx", choices=FORMATS, help="the file format (default onnx)")
    parser.add_argument("--out", metavar="DIR", help="the folder to write the files to (required but with --html)")
    parser.add_argument(
        "--html",
        metavar="FILE",
        help="instead: the explorer as one self-contained HTML file (no server, no network; opens from file://)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from vaelab.errors import ConfigError
    from vaelab.export import export_run

    if args.html:
        from vaelab.explorer import with_demo

        args.run_dir = with_demo(args.run_dir, args.demo)
        return run_html(args)
    if args.demo:
        raise ConfigError("export: --demo goes with --html (the explorer's page of the runs shipped with vaelab)")
    if len(args.run_dir) != 1:
        raise ConfigError(f"export: one RUN at a time for --format {args.format} (several only with --html)")
    if not args.out:
        raise ConfigError("export: --out DIR is required (or --html FILE for the explorer's page)")
    args.run_dir = args.run_dir[0]

    exported = export_run(args.run_dir, args.out, args.format)
    for network in exported.networks:
        path = exported.out / network.file
        checked = ", ".join(f"{k} inputs {v:.1e}" for k, v in network.checked.items())
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB; onnxruntime vs PyTorch, max abs diff: {checked})")
    for note in exported.notes:
        print(f"note: {note}")
    print(f"described in {exported.out / 'export.json'}")


def run_html(args: argparse.Namespace) -> None:
    from vaelab.explorer.static_page import build

    path, runs = build(args.run_dir, args.html)
    weights = ", ".join(f"{r['name']} {r['weights'] / 1e6:.2f} MB of float32 weights" for r in runs)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB: {weights}); open it in a browser, no server needed")
