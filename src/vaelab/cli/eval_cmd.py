"""`vaelab eval RUN`: every evaluation number, printed as a table and saved to RUN/eval.json."""

from __future__ import annotations

import argparse
import json

from vaelab.config import DEVICES


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "eval",
        help="ELBO, IWAE log-likelihood, latent usage, reconstruction, sample quality and, on data with factors, "
        "disentanglement",
    )
    parser.add_argument("run_dir", metavar="RUN")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--iwae-k", type=int, default=1000, help="importance samples per image (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision", default="fp32", choices=("fp32", "bf16"), help="decoder precision in the IWAE estimate"
    )
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument(
        "--features",
        default="auto",
        choices=("auto", "classifier", "random", "inception"),
        help="sample-quality feature space: classifier (trained on the labels), random (a fixed random CNN, for data "
        "without labels), auto (the classifier when there are 2+ classes, else random; default)",
    )
    parser.add_argument("--cache-dir", help="where the feature networks are cached (default: the data cache)")
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="SECTION",
        help="fail (exit 2) before any work unless this section can be measured, e.g. disentanglement (needs data "
        "with factors and a kind with an encoder); repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from vaelab.evaluate import evaluate_run, format_table

    result = evaluate_run(
        args.run_dir,
        args.split,
        args.iwae_k,
        args.seed,
        args.precision,
        args.device,
        args.cache_dir,
        quiet=args.quiet,
        require=tuple(args.require),
        features=args.features,
    )
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_table(result))
