"""Evidence for issue 13: vae, iwae, vamp (and cvae) on mnist-mini with --binarize (the standard likelihood
protocol), the same MLP 400 architecture and epochs, latent 2 and 10, several seeds. Each run is trained, a
Gaussian-mixture sampler is fitted to its training posterior means, and `vaelab eval` measures it (test NLL by
IWAE, ELBO, active units, FD / precision / recall for the prior and the GMM, the prior's mismatch with the
aggregate posterior). The conditional VAE's samples are classified by eval's feature classifier. Prints one
markdown row per run, then the means over seeds.

    PYTHONPATH=src python bench/kinds_table.py [--epochs 10] [--seeds 0,1] [--latent-dims 2,10]
        [--kinds vae,iwae,vamp,cvae] [--iwae-k 1000] [--pseudo-inputs 500] [--k 5] [--out bench-runs/kinds]

Training seconds are measured while nothing else should run (the machine is shared: compare within one
invocation only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from vaelab import kinds
from vaelab.evaluate import read_eval
from vaelab.pipeline import train_run
from vaelab.rundir import RunDir

sys.path.insert(0, str(Path(__file__).parent))
from cvae_accuracy import conditional_accuracy  # noqa: E402

COLUMNS = [
    "kind",
    "z",
    "seed",
    "train s",
    "test -ELBO",
    "NLL",
    "active",
    "FD prior",
    "P / R prior",
    "FD gmm",
    "P / R gmm",
    "prior KL / holes",
    "gmm KL / holes",
    "class acc.",
]


def kind_options(kind: str, args) -> dict:
    return {"iwae": {"k": args.k}, "vamp": {"pseudo_inputs": args.pseudo_inputs}}.get(kind, {})


def run_one(kind: str, z: int, seed: int, args) -> dict:
    out = Path(args.out) / f"{kind}-z{z}-s{seed}"
    config = kinds.make_config(
        {
            "kind": kind,
            "latent_dim": z,
            "seed": seed,
            "epochs": args.epochs,
            "binarize": True,
            "arch": "mlp",
            "hidden": [400],
            "out": str(out),
            "quiet": True,
            **kind_options(kind, args),
        }
    )
    if not RunDir(out).has_state():
        train_run(config, evaluate=True, iwae_k=args.iwae_k, fit_samplers=("gmm",))
    run_dir = RunDir(out)
    _, epochs = run_dir.read_metrics()
    result = read_eval(run_dir)
    row = {"kind": kind, "z": z, "seed": seed, "seconds": sum(e["seconds"] for e in epochs), "eval": result}
    if kinds.get(kind).labels:
        from vaelab.run import Run

        row["class_accuracy"] = conditional_accuracy(Run.open(out), 200, seed)["accuracy"]
    return row


def cells(row: dict) -> list[str]:
    e = row["eval"]
    s, m = e.get("samples"), e.get("prior_mismatch")
    fitted = e.get("samplers")
    g = fitted.samplers["gmm"].quality if fitted and "gmm" in fitted.samplers else None

    def kl_holes(name):
        if m is None or name not in m.distances:
            return "n/a"
        return f"{m.distances[name].kl_to_aggregate:.2f} / {m.distances[name].holes:.1%}"

    return [
        row["kind"],
        str(row["z"]),
        str(row["seed"]),
        f"{row['seconds']:.1f}",
        f"{-e.get('elbo').elbo:.2f}",
        f"{e.get('iwae').nll:.2f}",
        f"{e.get('latents').active_units}/{e.get('latents').latent_dim}",
        f"{s.fd_classifier:.1f}",
        f"{s.precision:.2f} / {s.recall:.2f}",
        f"{g.fd_classifier:.1f}" if g else "n/a",
        f"{g.precision:.2f} / {g.recall:.2f}" if g else "n/a",
        kl_holes("prior"),
        kl_holes("gmm"),
        f"{row['class_accuracy']:.1%}" if "class_accuracy" in row else "",
    ]


def means(rows: list[dict]) -> list[str]:
    def mean(get):
        return statistics.mean(get(r) for r in rows)

    first = rows[0]
    gmm = all(r["eval"].get("samplers") and "gmm" in r["eval"].get("samplers").samplers for r in rows)

    def sampler(r):
        return r["eval"].get("samplers").samplers["gmm"].quality

    def distance(r, name):
        return r["eval"].get("prior_mismatch").distances[name]

    return [
        first["kind"],
        str(first["z"]),
        f"mean of {len(rows)}",
        f"{mean(lambda r: r['seconds']):.1f}",
        f"{mean(lambda r: -r['eval'].get('elbo').elbo):.2f}",
        f"{mean(lambda r: r['eval'].get('iwae').nll):.2f}",
        f"{mean(lambda r: r['eval'].get('latents').active_units):.1f}",
        f"{mean(lambda r: r['eval'].get('samples').fd_classifier):.1f}",
        f"{mean(lambda r: r['eval'].get('samples').precision):.2f} / "
        f"{mean(lambda r: r['eval'].get('samples').recall):.2f}",
        f"{mean(lambda r: sampler(r).fd_classifier):.1f}" if gmm else "n/a",
        f"{mean(lambda r: sampler(r).precision):.2f} / {mean(lambda r: sampler(r).recall):.2f}" if gmm else "n/a",
        f"{mean(lambda r: distance(r, 'prior').kl_to_aggregate):.2f} / "
        f"{mean(lambda r: distance(r, 'prior').holes):.1%}",
        (f"{mean(lambda r: distance(r, 'gmm').kl_to_aggregate):.2f} / {mean(lambda r: distance(r, 'gmm').holes):.1%}")
        if gmm
        else "n/a",
        f"{mean(lambda r: r['class_accuracy']):.1%}" if "class_accuracy" in first else "",
    ]


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--latent-dims", default="2,10")
    parser.add_argument("--kinds", default="vae,iwae,vamp,cvae")
    parser.add_argument("--iwae-k", type=int, default=1000)
    parser.add_argument("--k", type=int, default=5, help="the IWAE kind's training k")
    parser.add_argument("--pseudo-inputs", type=int, default=500)
    parser.add_argument("--out", default="bench-runs/kinds")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows, groups = [], []
    for z in [int(v) for v in args.latent_dims.split(",")]:
        for kind in args.kinds.split(","):
            group = []
            for seed in seeds:
                row = run_one(kind, z, seed, args)
                print(" | ".join(cells(row)), file=sys.stderr, flush=True)
                group.append(row)
            rows += [cells(r) for r in group]
            groups.append(means(group))
    print(
        f"mnist-mini, --binarize, MLP 400, {args.epochs} epochs, seeds {args.seeds}, NLL by IWAE k={args.iwae_k}, "
        f"iwae k={args.k}, vamp {args.pseudo_inputs} pseudo-inputs\n"
    )
    print(markdown(rows) + "\n\nMeans over seeds:\n\n" + markdown(groups))
    (Path(args.out) / "table.json").write_text(
        json.dumps({"args": vars(args), "rows": rows, "means": groups}, indent=1)
    )


if __name__ == "__main__":
    main()
