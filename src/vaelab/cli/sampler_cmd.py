"""`vaelab fit-sampler RUN`: fit a sampler to a trained run's posterior means (then `vaelab sample RUN --sampler gmm`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit-sampler",
        help="fit a Gaussian mixture to the training posterior means (ex-post sampler)",
        description="Fit a sampler to the posterior means of RUN's training split and save it as "
        "RUN/sampler-<name>.safetensors; `vaelab sample RUN --sampler gmm` and `vaelab eval RUN` use it.",
    )
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--sampler", default="gmm", help="which sampler (default gmm)")
    p.add_argument(
        "--components", type=int, default=10, help="mixture components, at most the training images (default 10)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the fit, 0..2**32-1 (default 0)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from vaelab import samplers
    from vaelab.run import Run

    samplers.get(args.sampler, others=()).check_options(args.components, args.seed)  # before the run is opened
    print(samplers.fit_run(Run.open(args.run_dir), args.sampler, args.components, args.seed))
