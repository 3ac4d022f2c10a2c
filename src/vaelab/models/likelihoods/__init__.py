"""The likelihoods p(x|z) of the decoder's output: one module each, registered in `LIKELIHOODS`.

A likelihood says how many decoder output channels it needs per image channel (`outputs`), how to score images
under the decoder's output (`log_prob`, per image, nats), what image to show (`mean`), how to draw one
(`sample`), and what its numbers are (`note` for `vaelab eval`). Consumers ask it; none compares its name.
"""

from __future__ import annotations

from vaelab.models.likelihoods import bernoulli, gaussian, logistic
from vaelab.models.likelihoods.base import Likelihood

LIKELIHOODS: dict[str, Likelihood] = {
    item.name: item for item in (bernoulli.BERNOULLI, gaussian.GAUSSIAN, logistic.LOGISTIC)
}


def get(name: str) -> Likelihood:
    try:
        return LIKELIHOODS[name]
    except KeyError:
        raise ValueError(f"likelihood: must be one of {', '.join(LIKELIHOODS)}, got {name!r}") from None


__all__ = ["LIKELIHOODS", "Likelihood", "get"]
