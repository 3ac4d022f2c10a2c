"""Evaluation of a trained run: ELBO, IWAE log-likelihood, latent usage, reconstruction error and sample
quality (Frechet distance, precision, recall in a trained classifier's feature space).

`runner.evaluate_run` computes the sections the run's kind has; `summary` turns a result into rows."""

from vaelab.evaluate.runner import evaluate_run, sample_quality
from vaelab.evaluate.summary import eval_rows, format_table

__all__ = ["eval_rows", "evaluate_run", "format_table", "sample_quality"]
