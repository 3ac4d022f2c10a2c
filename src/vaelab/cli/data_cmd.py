"""`vaelab data list | info NAME|PATH | download NAME`."""

from __future__ import annotations

import argparse

import torch

from vaelab import data
from vaelab.data.files import shown
from vaelab.errors import DataError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="list, inspect and download data sets")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=type(parser))
    verbs.required = True
    verbs.add_parser("list", help="the named data sets").set_defaults(run=run_list)
    info = verbs.add_parser("info", help="counts, shape, value range, label histogram and factors of a data set")
    info.add_argument("source", metavar="NAME|PATH")
    info.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="resize an image folder to H x W")
    info.add_argument(
        "--cache-dir", help="where downloaded data sets are kept (default: $VAELAB_DATA_DIR or ~/.cache/vaelab)"
    )
    info.set_defaults(run=run_info)
    download = verbs.add_parser("download", help="download a named data set into the cache")
    download.add_argument("name", choices=sorted(data.REMOTE_SETS))
    download.add_argument("--cache-dir", help="where downloaded data sets are kept")
    download.set_defaults(run=run_download)


def run_list(args: argparse.Namespace) -> None:
    width = max(map(len, data.names()))
    for name, about in data.names().items():
        print(f"{name:<{width}}  {about}")
    print(f"\ncache for downloads: {data.cache_root()}")


def describe(dataset: data.Dataset) -> str:
    # names come from file and folder names: escape what a terminal would show as extra lines or garbage
    lines = [f"{shown(dataset.name)}  ({shown(dataset.source)})"]
    lines.append(f"image shape (C, H, W): {tuple(dataset.shape)}  dtype uint8")
    for split_name in ("train", "test"):
        split = getattr(dataset, split_name)
        lo, hi = int(split.images.min()), int(split.images.max())
        mean = int(split.images.sum(dtype=torch.int64)) / split.images.numel() / 255  # no float copy of the set
        lines.append(f"{split_name:<5} {len(split):>7} images  values [{lo}, {hi}] / 255  mean {mean:.4f}")
        if split.labels is not None:
            counts = torch.bincount(split.labels, minlength=dataset.num_classes or 0).tolist()
            names = [shown(n) for n in dataset.classes] if dataset.classes else [str(i) for i in range(len(counts))]
            lines.append("      labels: " + "  ".join(f"{n}:{c}" for n, c in zip(names, counts)))
        else:
            lines.append("      labels: none")
    if dataset.factor_names is None:
        lines.append("factors: none")
    else:
        lines.append(f"factors: {len(dataset.factor_names)} (name: number of values [first .. last value])")
        values = dataset.factor_values or [None] * len(dataset.factor_names)
        for name, size, known in zip(dataset.factor_names, dataset.factor_sizes, values):
            span = f"  [{known[0]:.4g} .. {known[-1]:.4g}]" if known else ""
            lines.append(f"      {shown(name)}: {size}{span}")
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> None:
    print(describe(data.load(args.source, size=tuple(args.size) if args.size else None, cache_dir=args.cache_dir)))


def run_download(args: argparse.Namespace) -> None:
    folder = data.ensure_files(args.name, args.cache_dir)
    dataset = data.load(args.name, cache_dir=args.cache_dir)
    print(f"{args.name}: verified in {folder} ({len(dataset.train)} train / {len(dataset.test)} test)")


__all__ = ["register", "DataError"]
