"""The comparison study's answers (vaelab.study_answers): each verdict sentence follows the members' numbers (swap two
members' numbers and the sentence must say the opposite)."""

import copy
from pathlib import Path
from types import SimpleNamespace

from vaelab import compare, study_answers
from vaelab.evaluate import EvalResult


def study(kind_names=("vae",), archs=("mlp", "conv"), dims=(2, 10), betas=(1.0,)) -> list:
    return compare.plan({"data": "mnist-mini"}, list(archs), list(dims), list(betas), Path("study"), list(kind_names))


def member(recon: float, kl: float, fd: float | None = None, nll: float | None = None) -> dict:
    terms = {"recon": recon, "kl": kl, "loss": recon + kl}
    row = {"test": terms, "train": dict(terms), "seconds": 1.0}
    if fd is not None or nll is not None:
        iwae = {"iwae": {"k": 100, "nll": nll, "nll_se": 0.1, "bits_per_dim": 0.2}} if nll else {}
        row["eval"] = {"samples": {"available": True, "fd_classifier": fd}, **iwae}
    return row


def answers(members: list, finals: dict) -> list[str]:
    """The study's answers for members' numbers written as plain tables (read as compare.Finals, the evaluation
    as eval.json is read)."""
    typed = {
        name: compare.Finals(
            f["test"],
            f["train"],
            f["seconds"],
            EvalResult.from_dict({"run": name, "split": "test", "n_images": 10, **f["eval"]}) if "eval" in f else None,
        )
        for name, f in finals.items()
    }
    return study_answers.answers(members, typed)


def swapped(finals: dict, a: str, b: str) -> dict:
    out = copy.deepcopy(finals)
    out[a], out[b] = out[b], out[a]
    return out


def sentence(lines: list[str], starts: str) -> str:
    return next(line for line in lines if line.startswith(starts))


def test_the_conv_against_mlp_verdict_follows_the_numbers():
    """Catches a verdict that is fixed prose, or that compares the wrong way round (higher -ELBO as better).
    Checks a README claim."""
    members = study()
    finals = {
        "mlp-z2": member(150, 10),
        "mlp-z10": member(100, 20),
        "conv-z2": member(140, 8),
        "conv-z10": member(90, 18),
    }
    head = "<b>Convolutional vs fully connected</b>"
    text = sentence(answers(members, finals), head)
    assert "the conv model beats the MLP" in text and "z=2: mlp 160.0 vs conv 148.0" in text
    flipped = swapped(swapped(finals, "mlp-z2", "conv-z2"), "mlp-z10", "conv-z10")
    text = sentence(answers(members, flipped), head)
    assert "the conv model does not beat the MLP" in text and "z=2: mlp 148.0 vs conv 160.0" in text
    mixed = swapped(finals, "mlp-z2", "conv-z2")
    assert "beats in some settings" in sentence(answers(members, mixed), head)


def test_the_latent_dimension_verdicts_follow_the_numbers():
    """Catches 'better reconstructions' or 'better samples' said whatever the recon term and the FD are.
    Checks a README claim."""
    members = study(archs=("mlp",))
    finals = {"mlp-z2": member(160, 5, fd=300), "mlp-z10": member(100, 20, fd=200)}
    head = "<b>Latent dimension (mlp)</b>"
    text = sentence(answers(members, finals), head)
    assert "from 160.0 to 100.0 nats (better reconstructions)" in text and "KL from 5.0 to 20.0" in text
    assert "from 300.0 to 200.0 (better samples)" in text
    text = sentence(answers(members, swapped(finals, "mlp-z2", "mlp-z10")), head)
    assert "from 100.0 to 160.0 nats (worse reconstructions)" in text and "(worse samples)" in text
    finals["mlp-z10"]["eval"]["samples"]["fd_classifier"] = 400  # better reconstructions, worse samples
    text = sentence(answers(members, finals), head)
    assert "(better reconstructions)" in text and "from 300.0 to 400.0 (worse samples)" in text


def test_the_kl_weight_answer_names_each_beta_with_its_own_numbers():
    """Catches the beta sentence listing members' numbers under the wrong beta. Checks a README claim."""
    members = study(archs=("mlp",), dims=(10,), betas=(0.5, 4.0))
    finals = {"mlp-z10-beta0.5": member(90, 30), "mlp-z10-beta4": member(130, 6)}
    text = sentence(answers(members, finals), "<b>The KL weight (mlp, z=10)</b>")
    assert "beta=0.5: KL 30.0, recon 90.0; beta=4: KL 6.0, recon 130.0" in text
    text = sentence(answers(members, swapped(finals, "mlp-z10-beta0.5", "mlp-z10-beta4")), "<b>The KL weight")
    assert "beta=0.5: KL 6.0, recon 130.0; beta=4: KL 30.0, recon 90.0" in text


def test_the_kinds_verdicts_name_the_member_with_the_better_number():
    """Catches 'lowest FD' or 'lowest NLL' naming a fixed member, the first one, or the highest.
    Checks a README claim."""
    members = study(kind_names=("vae", "gan"), archs=("mlp",), dims=(10,))
    finals = {"vae-mlp-z10": member(100, 20, fd=250.0), "gan-mlp-z10": {**member(0, 0, fd=120.0), "test": {}}}
    head = "<b>VAE against adversarial models</b>"
    text = sentence(answers(members, finals), head)
    assert "vae-mlp-z10: FD 250.0; gan-mlp-z10: FD 120.0" in text and "is gan-mlp-z10's" in text
    assert "is vae-mlp-z10's" in sentence(answers(members, swapped(finals, "vae-mlp-z10", "gan-mlp-z10")), head)

    members = study(kind_names=("vae", "iwae"), archs=("mlp",), dims=(10,))
    finals = {"vae-mlp-z10": member(100, 20, fd=250, nll=118.0), "iwae-mlp-z10": member(105, 22, fd=240, nll=114.0)}
    head = "<b>Test log-likelihood (mlp, z=10)</b>"
    text = sentence(answers(members, finals), head)
    assert "VAE: 118.0; IWAE: 114.0" in text and "The lowest is IWAE's" in text
    text = sentence(answers(members, swapped(finals, "vae-mlp-z10", "iwae-mlp-z10")), head)
    assert "VAE: 114.0; IWAE: 118.0" in text and "The lowest is VAE's" in text


def test_the_prior_against_sampler_verdict_follows_the_numbers():
    """Catches 'better samples' said of a fitted sampler whose FD is not below the prior's. Checks a README claim."""
    members = study(archs=("mlp",), dims=(10,))
    finals = {"mlp-z10": member(100, 20, fd=320.0)}
    finals["mlp-z10"]["eval"].update(
        prior_mismatch={
            "n_images": 10,
            "level": 0.01,
            "definition": "",
            "prior": {"kl_to_aggregate": 0.66, "holes": 0.009},
            "gmm": {"kl_to_aggregate": 0.03, "holes": 0.023},
        },
        samplers={"gmm": {"description": "a mixture", "available": True, "fd_classifier": 82.0}},
    )
    head = "<b>Prior against aggregate posterior (mlp-z10)</b>"
    text = sentence(answers(members, finals), head)
    assert (
        "0.66 nats" in text and "0.9% of them" in text and "FD 82.0 against the prior's 320.0 (better samples)" in text
    )
    finals["mlp-z10"]["eval"]["samplers"]["gmm"]["fd_classifier"] = 400.0
    text = sentence(answers(members, finals), head)
    assert "FD 400.0 against the prior's 320.0 (not better samples)" in text


class Scored:
    """A member's numbers as compare.Finals gives them, with a `disentanglement` section of the four scores."""

    def __init__(self, recon: float, kl: float, mig: float, dci: float = 0.3, sap: float = 0.1, fv: float = 0.5):
        self.test = {"recon": recon, "kl": kl}
        self.neg_elbo = recon + kl
        self._section = SimpleNamespace(mig=mig, dci_disentanglement=dci, sap=sap, factorvae=fv)

    def section(self, name: str):
        return self._section if name == "disentanglement" else None


def disentangling_study(seeds=(0, 1, 2)) -> list:
    kinds = ["vae", "vae:beta=4", "betatc", "factor"]
    return compare.plan({"data": "mnist-mini"}, ["mlp"], [10], None, Path("study"), kinds, list(seeds))


def test_the_disentanglement_verdict_names_the_best_mig_over_seeds_and_its_reconstruction_cost():
    """The group with the highest mean MIG over its seeds is named best, with every group's mean ± deviation, the
    other scores' leaders, and its reconstruction against the best-reconstructing group; swapping two groups' numbers
    swaps the verdict. Catches a verdict that reads one seed, or ranks the wrong way round."""
    members = disentangling_study()
    mig = {"vae": 0.02, "vae-beta4": 0.10, "betatc": 0.30, "factor": 0.20}
    recon = {"vae": 100.0, "vae-beta4": 130.0, "betatc": 112.0, "factor": 115.0}
    finals = {}
    for m in members:
        label = m.group.removesuffix("-mlp-z10")
        jitter = 0.01 * m.config.seed
        finals[m.name] = Scored(recon[label] + m.config.seed, 10.0, mig[label] + jitter, dci=mig[label] + 0.2)
    (text,) = study_answers.disentanglement_answers(members, finals)
    assert text.startswith(
        "<b>Disentanglement</b> over 3 seeds (mean ± standard deviation): by MIG, betatc-mlp-z10 "
        "0.310 ± 0.010; factor-mlp-z10 0.210 ± 0.010; vae-beta4-mlp-z10 0.110 ± 0.010; "
        "vae-mlp-z10 0.030 ± 0.010."
    ), text
    assert "betatc-mlp-z10 disentangles best by MIG, 0.100 above factor-mlp-z10" in text
    assert "DCI disentanglement: betatc-mlp-z10 (0.500 ± 0.000)" in text and "(1 of 3 agree with MIG)" in text
    assert "a test reconstruction term of 113.0 ± 1.0 nats against 101.0 ± 1.0 for vae-mlp-z10" in text
    assert "(+12.0 nats per image)" in text
    flipped = swapped(finals, "betatc-mlp-z10-s0", "vae-mlp-z10-s0")
    flipped = swapped(flipped, "betatc-mlp-z10-s1", "vae-mlp-z10-s1")
    flipped = swapped(flipped, "betatc-mlp-z10-s2", "vae-mlp-z10-s2")
    (text,) = study_answers.disentanglement_answers(members, flipped)
    assert "vae-mlp-z10 disentangles best by MIG" in text and "for betatc-mlp-z10, the best reconstruction" in text


def test_a_lead_within_the_seeds_spread_is_not_called_a_win():
    members = disentangling_study(seeds=(0, 1))
    finals = {}
    for m in members:
        noisy = 0.05 * (-1) ** m.config.seed  # a spread of 0.07 around close means
        best = m.group.startswith("factor")
        finals[m.name] = Scored(100.0, 10.0, 0.10 + (0.01 if best else 0.0) + noisy)
    (text,) = study_answers.disentanglement_answers(members, finals)
    assert "factor-mlp-z10 leads" in text and "within the seeds' spread" in text and "no member clearly" in text


def test_there_is_no_disentanglement_verdict_without_factors():
    members = disentangling_study(seeds=(0,))
    finals = {m.name: Scored(100.0, 10.0, 0.1) for m in members}
    for score in finals.values():
        score._section = None
    assert study_answers.disentanglement_answers(members, finals) == []
