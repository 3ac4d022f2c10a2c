"""An evaluation result as rows of (quantity, value): the one source of the `vaelab eval` table and the
report's evaluation table."""

from __future__ import annotations

from typing import Any


def eval_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Every number of an eval.json, formatted, in the order a reader wants them; only its sections."""
    rows: list[tuple[str, str]] = []
    if "elbo" in result:
        e, i = result["elbo"], result["iwae"]
        rows += [("ELBO (nats/image)", f"{e['elbo']:.2f}  (recon {e['recon']:.2f}, KL {e['kl']:.2f})")]
        if "sq_error" in e:
            rows.append(("squared error ||x - x_hat||^2", f"{e['sq_error']:.2f}"))
        rows += [
            ("-ELBO (bits/dim)", f"{e['bits_per_dim']:.4f}"),
            (f"NLL, IWAE k={i['k']} (nats/image)", f"{i['nll']:.2f} +- {i['nll_se']:.2f} (s.e.)"),
            ("NLL (bits/dim)", f"{i['bits_per_dim']:.4f}"),
        ]
    if "latents" in result:
        lat, rec = result["latents"], result["reconstruction"]
        kl = " ".join(f"{v:.2f}" for v in lat["kl_per_dim"][:16]) + (" ..." if lat["latent_dim"] > 16 else "")
        rows += [
            ("active units", f"{lat['active_units']} of {lat['latent_dim']}"),
            ("KL per dimension", kl),
            ("reconstruction MSE / PSNR", f"{rec['mse']:.5f} / {rec['psnr_db']:.2f} dB"),
        ]
    s = result["samples"]
    if s.get("available"):
        rows += [
            ("FD (classifier features)", f"{s['fd_classifier']:.3f}"),
            ("precision / recall", f"{s['precision']:.3f} / {s['recall']:.3f}"),
            ("feature classifier accuracy", f"{s['classifier_test_accuracy']:.4f}"),
        ]
    else:
        rows.append(("sample quality", f"unavailable: {s['why']}"))
    return rows + sampler_rows(result)


def sampler_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Fitted samplers' sample quality and the prior's mismatch with the aggregate posterior (when measured)."""
    rows: list[tuple[str, str]] = []
    for name, s in result.get("samplers", {}).items():
        if s.get("available"):
            rows.append(
                (
                    f"sampler {name}: FD / precision / recall",
                    f"{s['fd_classifier']:.3f} / {s['precision']:.3f} / {s['recall']:.3f}",
                )
            )
    mismatch = result.get("prior_mismatch")
    if mismatch:
        for name in ["prior", *result.get("samplers", {})]:
            m = mismatch[name]
            rows.append(
                (
                    f"{name} vs aggregate posterior",
                    f"KL {m['kl_to_aggregate']:.2f} nats, {m['holes']:.1%} of draws in holes",
                )
            )
    return rows


def format_table(result: dict[str, Any]) -> str:
    """The text table `vaelab eval` prints."""
    rows = eval_rows(result)
    width = max(len(name) for name, _ in rows)
    head = f"{result['run']}: {result['split']} split, {result['n_images']} images, seed {result['seed']}"
    lines = [head] + [f"  {name:<{width}}  {value}" for name, value in rows]
    lines += [f"  note: {note}" for note in result["notes"]]
    return "\n".join(lines)
