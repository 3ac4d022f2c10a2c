"""`vaelab export RUN --format onnx --out DIR`: the run's encoder and decoder as ONNX files, checked with
onnxruntime, and export.json describing them."""

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
    parser.add_argument("run_dir", metavar="RUN")
    parser.add_argument("--format", default="onnx", choices=FORMATS, help="the file format (default onnx)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder to write the files to")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from vaelab.export import export_run

    exported = export_run(args.run_dir, args.out, args.format)
    for network in exported.networks:
        path = exported.out / network.file
        checked = ", ".join(f"{k} inputs {v:.1e}" for k, v in network.checked.items())
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB; onnxruntime vs PyTorch, max abs diff: {checked})")
    for note in exported.notes:
        print(f"note: {note}")
    print(f"described in {exported.out / 'export.json'}")
