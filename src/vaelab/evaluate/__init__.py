"""Evaluation of a trained run: one section per registered metric (`metrics`): the ELBO and the IWAE
log-likelihood, latent usage, reconstruction error, sample quality (Frechet distance, precision, recall in a trained
classifier's feature space) and the prior's mismatch with the aggregate posterior.

`runner.evaluate_run` measures the metrics the run's kind has into an `EvalResult`; `summary` turns it into rows."""

from vaelab.evaluate.result import EvalResult
from vaelab.evaluate.runner import evaluate_run, read_eval
from vaelab.evaluate.sample_quality import sample_quality
from vaelab.evaluate.summary import eval_rows, format_table

__all__ = ["EvalResult", "eval_rows", "evaluate_run", "format_table", "read_eval", "sample_quality"]
