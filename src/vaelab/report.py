"""HTML reports: one self-contained file (figures embedded as base64 PNG), readable offline on any screen."""

from __future__ import annotations

import base64
import html
import json
import statistics
from pathlib import Path
from typing import Any

from vaelab import figures
from vaelab.checkpoint import atomic_write
from vaelab.errors import RunError
from vaelab.evaluate import eval_rows, read_eval
from vaelab.figure import StudyFigure
from vaelab.run import Run

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
    return (
        f'<figure><img src="{embed_png(path)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


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
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def run_report(run: Run | str | Path) -> Path:
    """Write RUN/report.html: config, metrics, evaluation (when eval.json exists) and every figure present."""
    run = run if isinstance(run, Run) else Run.open(run)
    meta = run.meta
    _, epochs = run.read_metrics()
    model, dataset = meta["model"], meta.get("data", {})
    parts = [
        f"<p>{html.escape(str(model.get('arch')))} {html.escape(run.kind.title)}, latent dimension {model.get('latent_dim')}, "
        f"{html.escape(str(model.get('likelihood')))} likelihood, trained on <b>{html.escape(str(dataset.get('name')))}</b> "
        f"({dataset.get('n_train')} train / {dataset.get('n_test')} test images of shape {tuple(dataset.get('shape', ()))}).</p>"
    ]
    if epochs:
        parts += _metrics_html(epochs)
    parts += _eval_html(run)
    parts.append("<h2>Figures</h2>")
    for name, caption in figures.captions():
        if run.figure_path(name).exists():
            parts.append(figure_html(run.figure_path(name), caption))
    parts.append("<h2>Configuration</h2>")
    config = {**run.config.to_dict(), **{"model." + k: v for k, v in model.items()}}
    parts.append(table_html(["key", "value"], [[k, json.dumps(v)] for k, v in config.items()]))
    parts.append(f"<p>versions: {html.escape(json.dumps(meta.get('versions', {})))}</p>")
    return run.write_report(page(f"vaelab run {run.name}", "".join(parts)))


def _eval_html(run: Run) -> list[str]:
    """The evaluation section; a damaged eval.json becomes a note saying so, not a failed report."""
    try:
        result = read_eval(run)
        if result is None:
            return []
        head = f"<h2>Evaluation ({html.escape(str(result.split))} split, {int(result.n_images)} images)</h2>"
        rows = [list(row) for row in eval_rows(result)]
        notes = [f'<p class="note">{html.escape(str(n))}</p>' for n in result.notes]
    except (RunError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        why = str(exc) if isinstance(exc, RunError) else f"{run.eval_path}: damaged ({type(exc).__name__}: {exc})"
        return [
            "<h2>Evaluation</h2>",
            f'<p class="note">{html.escape(why)}; run `vaelab eval {html.escape(str(run.path))}` again.</p>',
        ]
    return [head, table_html(["quantity", "value"], rows), *notes]


def _metrics_html(epochs: list[dict[str, Any]]) -> list[str]:
    last = epochs[-1]
    terms = list(last["train"])
    speeds = [e.get("images_per_s") for e in epochs if isinstance(e.get("images_per_s"), (int, float))]
    speed = statistics.median(speeds) if speeds else float("nan")
    total = sum(e["seconds"] for e in epochs if isinstance(e.get("seconds"), (int, float)))
    return [
        "<h2>Metrics (last epoch, means per image, nats)</h2>",
        table_html(["split", *terms], [[split, *[last[split].get(t) for t in terms]] for split in ("train", "test")]),
        f"<p>{len(epochs)} epochs, {total:.1f} s of training, median {speed:,.0f} training images/s.</p>",
    ]


def study_report(
    out: Path,
    intro: str,
    header: list[str],
    rows: list[list[Any]],
    answers: list[str],
    drawn: list[StudyFigure],
    members: list[str],
    summary: tuple[str, list[str], list[list[Any]]] | None = None,
) -> Path:
    """Write out/report.html of a comparison study: the metrics table (after `summary`, a (title, header, rows) table
    of the members grouped over seeds), the answers, the side-by-side figures."""
    body = [intro]
    if summary is not None:
        title, summary_header, summary_rows = summary
        body += [f"<h2>{html.escape(title)}</h2>", table_html(summary_header, summary_rows)]
    body += [
        "<h2>Final metrics</h2>",
        table_html(header, rows),
        "<h2>What the study shows</h2>",
        "<ul>" + "".join(f"<li>{a}</li>" for a in answers) + "</ul>",
    ]
    for figure in drawn:
        body += [f"<h2>{figure.title}</h2>", figure_html(out / f"{figure.name}.png", figure.caption)]
    body.append(
        "<p>Member runs: " + ", ".join(f'<a href="{m}/report.html">{html.escape(m)}</a>' for m in members) + "</p>"
    )
    path = out / "report.html"
    text = page("vaelab comparison study", "".join(body))
    atomic_write(path, lambda temp: Path(temp).write_text(text))
    return path
