"""HTML reports: one self-contained file (figures embedded as base64 PNG), readable offline on any screen."""

from __future__ import annotations

import base64
import html
import json
import statistics
from pathlib import Path
from typing import Any

from vaelab.checkpoint import CONFIG_FILE, atomic_write, read_json
from vaelab.run import read_metrics

CAPTIONS = {
    "curves": "Training curves: every loss term, train (solid) against test (dashed), per epoch.",
    "reconstructions": "Test images (odd rows) above their reconstructions from the posterior mean (even rows).",
    "samples": "Samples decoded from a fixed batch of z ~ N(0, I): comparable across epochs and runs.",
    "interpolation": "Interpolation between the posterior means of pairs of test images.",
    "manifold": "The latent manifold: decoded points of a regular grid over [-1.5, 1.5]^2.",
    "latents": "Test posterior means, coloured by label.",
    "kl_per_dim": "Mean KL per latent dimension: the dimensions the model actually uses.",
}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:12px;color:#222;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:1.6em}
table{border-collapse:collapse;margin:8px 0;font-size:.92em;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;white-space:nowrap}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:12px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.9em;color:#555}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;margin:8px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}
"""


def embed_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure_html(path: Path, caption: str) -> str:
    return (f'<figure><img src="{embed_png(path)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip


def table_html(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return (
                f'<td class="num">{v:.4g}</td>' if abs(v) < 1e-2 or abs(v) >= 1e5 else f'<td class="num">{v:.3f}</td>'
            )
        if isinstance(v, int) and not isinstance(v, bool):
            return f'<td class="num">{v}</td>'
        return f"<td>{html.escape(str(v))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n")  # fmt: skip


def eval_rows(result: dict[str, Any]) -> list[list[Any]]:
    s = result["samples"]
    rows = [] if result.get("kind") == "gan" else _likelihood_rows(result)
    if s.get("available"):
        rows += [["FD (classifier features)", s["fd_classifier"]], ["precision", s["precision"]], ["recall", s["recall"]],
                 ["feature classifier test accuracy", s["classifier_test_accuracy"]]]  # fmt: skip
    return rows


def _likelihood_rows(result: dict[str, Any]) -> list[list[Any]]:
    e, i, lat, rec = result["elbo"], result["iwae"], result["latents"], result["reconstruction"]
    return [["ELBO (nats/image)", e["elbo"]], ["-ELBO (bits/dim)", e["bits_per_dim"]],
            [f"NLL, IWAE k={i['k']} (nats/image)", f"{i['nll']:.3f} ± {i['nll_se']:.3f}"], ["NLL (bits/dim)", i["bits_per_dim"]],
            ["active units", f"{lat['active_units']} of {lat['latent_dim']}"],
            ["reconstruction MSE", rec["mse"]], ["PSNR (dB)", rec["psnr_db"]]]  # fmt: skip


def run_report(run_dir: str | Path) -> Path:
    """Write RUN/report.html: config, metrics, evaluation (when eval.json exists) and every figure present."""
    run_dir = Path(run_dir)
    meta = read_json(run_dir / CONFIG_FILE)
    _, epochs = read_metrics(run_dir)
    model, train, dataset = meta["model"], meta["train"], meta["data"]
    kind = {"vae": "VAE", "gan": "GAN (generator: the decoder architecture)", "vaegan": "VAE-GAN"}[
        meta.get("kind", "vae")
    ]
    parts = [f"<p>{html.escape(model['arch'])} {kind}, latent dimension {model['latent_dim']}, "
             f"{html.escape(model['likelihood'])} likelihood, trained on <b>{html.escape(dataset['name'])}</b> "
             f"({dataset['n_train']} train / {dataset['n_test']} test images of shape {tuple(dataset['shape'])}).</p>"]  # fmt: skip
    if epochs:
        last = epochs[-1]
        terms = list(last["train"])
        parts.append("<h2>Metrics (last epoch, means per image, nats)</h2>")
        parts.append(
            table_html(
                ["split", *terms], [[split, *[last[split].get(t) for t in terms]] for split in ("train", "test")]
            )
        )
        speed = statistics.median(e["images_per_s"] for e in epochs)
        total = sum(e["seconds"] for e in epochs)
        parts.append(f"<p>{len(epochs)} epochs, {total:.1f} s of training, median {speed:,.0f} training images/s.</p>")
    eval_path = run_dir / "eval.json"
    if eval_path.exists():
        result = json.loads(eval_path.read_text())
        parts.append(f"<h2>Evaluation ({html.escape(result['split'])} split, {result['n_images']} images)</h2>")
        parts.append(table_html(["quantity", "value"], eval_rows(result)))
        parts += [f'<p class="note">{html.escape(n)}</p>' for n in result.get("notes", [])]
    parts.append("<h2>Figures</h2>")
    for name, caption in CAPTIONS.items():
        if (run_dir / f"{name}.png").exists():
            parts.append(figure_html(run_dir / f"{name}.png", caption))
    parts.append("<h2>Configuration</h2>")
    parts.append(
        table_html(
            ["key", "value"],
            [[k, json.dumps(v)] for k, v in {**train, **{"model." + k: v for k, v in model.items()}}.items()],
        )
    )
    parts.append(f"<p>versions: {html.escape(json.dumps(meta.get('versions', {})))}</p>")
    path = run_dir / "report.html"
    text = page(f"vaelab run {run_dir.name}", "".join(parts))
    atomic_write(path, lambda temp: Path(temp).write_text(text))
    return path
