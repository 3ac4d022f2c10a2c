"""A fitted sampler file (RUN/sampler-gmm.safetensors) is checked on load as model.safetensors is: whatever it holds,
`samplers.load` gives a mixture that samples finite latents of the run's size, or a one-line RunError that names the
file, the fault and `vaelab fit-sampler`. `sample`, `eval` and `explore` answer a damaged file with that line (exit
2, no traceback), and `fit-sampler` checks its options against their real bounds before the fit.

The example budget is small in CI (derandomized); for a long manual run:
    VAELAB_FUZZ=thorough python -m pytest -q tests/samplers/test_gmm_file.py --hypothesis-show-statistics
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from tests.helpers.fuzz import FUZZ, json_values
from vaelab import samplers
from vaelab.errors import ConfigError, RunError
from vaelab.samplers import gmm

D, K = 2, 3  # the latent dimension of the runs below, the components of their mixture

# --- a valid file, and a run directory to hold it -------------------------------------------------------------


def valid_mixture() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a K-component mixture fitted in D dimensions, as `vaelab fit-sampler` writes them."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    points = torch.cat([torch.randn(60, D, generator=g) * 0.3 + c for c in centres])
    sampler = gmm.fit(points, K, seed=0)
    tensors = {"weights": sampler.weights, "means": sampler.means, "covariances": sampler.covariances}
    return tensors, {"info": json.dumps(sampler.info)}


VALID = valid_mixture()


def fake_run(folder: Path, latent_dim: int = D) -> Path:
    """A folder holding only the part of a run a sampler is checked against: config.json's latent dimension."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model": {"latent_dim": latent_dim}, "train": {}}))
    return folder


def write(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> None:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)


def outcome(run: Path) -> str:
    """Load RUN's gmm sampler: a valid mixture that samples finite latents, or a one-line RunError naming the file
    (any other exception fails the test). Returns "valid" or "error: <the fault, shortened>"."""
    path = samplers.sampler_path(run, "gmm")
    try:
        sampler = samplers.load(run, "gmm")
    except RunError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: "), message
        assert message.isprintable(), f"not one line: {message!r}"
        assert message.endswith(f"fit it again with `vaelab fit-sampler {run}`"), message
        return f"error: {message[len(str(path)) + 2 :].split(' (')[0].split(';')[0][:40]}"
    assert sampler.weights.shape == (sampler.means.shape[0],) and sampler.means.shape[1] == D
    assert float(sampler.weights.min()) >= 0 and abs(float(sampler.weights.sum()) - 1) <= gmm.WEIGHT_TOLERANCE
    z = sampler.sample(512, torch.Generator().manual_seed(0))
    assert z.shape == (512, D) and z.dtype == torch.float32 and torch.isfinite(z).all()
    assert float(z.abs().max()) < 1e9  # far from float32's overflow, whatever the decoder does with it
    return "valid"


# --- Hypothesis: random corruptions of a valid file --------------------------------------------------------------

DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
]
SPECIAL = [0.0, -0.0, 1e-300, 5e-324, 1e-8, 0.5, 1.0, 2.0, 1e6, 1e7, 1e12, 1e30, 1e300, 1e308]


@st.composite
def edited_tensor(draw, t: torch.Tensor) -> torch.Tensor:
    """`t` with one random edit: a sign, a scale, one poisoned element, a new shape or a new dtype."""
    dtype, t = (
        t.dtype,
        t.double().clone(),
    )  # edited in float64 (1e300 fits), then stored in its dtype (as inf in float32)
    op = draw(st.sampled_from(["negate", "negate_one", "scale", "poison", "reshape", "dtype", "transpose"]))
    index = tuple(draw(st.integers(0, n - 1)) for n in t.shape) if t.numel() else None
    if op == "negate":
        t = -t
    elif op == "negate_one" and index is not None:
        t[index] = -t[index]
    elif op == "scale":
        t = t * draw(st.one_of(st.sampled_from(SPECIAL), st.floats(-1e10, 1e10)))
    elif op == "poison" and index is not None:
        t[index] = draw(st.one_of(st.sampled_from([float("nan"), float("inf"), -float("inf"), *SPECIAL]), st.floats()))
    elif op == "reshape":
        how = draw(st.sampled_from(["drop", "append", "unsqueeze", "flatten", "narrow", "empty", "random"]))
        how = "unsqueeze" if t.dim() == 0 and how in ("drop", "append", "narrow") else how  # a scalar has no rows
        if how == "drop":
            t = t[1:]
        elif how == "append":
            t = torch.cat([t, t[:1]])
        elif how == "unsqueeze":
            t = t[None]
        elif how == "flatten":
            t = t.flatten()
        elif how == "narrow":
            t = t[..., :-1]
        else:
            shape = draw(st.lists(st.integers(0 if how == "empty" else 1, 4), max_size=4))
            t = torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 9))), dtype=t.dtype)
    elif op == "dtype":
        t = t.to(draw(st.sampled_from(DTYPES)))
    elif op == "transpose" and t.dim() >= 2:
        t = t.mT
    return t if op == "dtype" else t.to(dtype)


@st.composite
def corrupted_file(draw) -> bytes:
    """The bytes of a valid sampler file after 1-3 random edits of its tensors, keys and metadata, and perhaps of its
    bytes (a truncation, a flipped byte, a header claiming other shapes or dtypes)."""
    tensors, metadata = dict(VALID[0]), dict(VALID[1])
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["tensor", "tensor", "tensor", "drop", "add", "rename", "info"]))
        key = draw(st.sampled_from(gmm.TENSORS))
        if what == "tensor" and key in tensors:
            tensors[key] = draw(edited_tensor(tensors[key]))
        elif what == "drop":
            tensors.pop(key, None)
        elif what == "add":
            tensors[draw(st.sampled_from(["extra", "Weights", "weights ", "means.1"]))] = torch.zeros(K)
        elif what == "rename" and key in tensors:
            tensors[key.upper()] = tensors.pop(key)
        elif what == "info":
            how = draw(st.sampled_from(["drop", "text", "json", "field"]))
            if how == "drop":
                metadata = {}
            elif how == "text":
                metadata = {"info": draw(st.text(max_size=20))}
            elif how == "json":
                metadata = {"info": json.dumps(draw(json_values))}
            else:  # one field of the fit's own description
                info = {
                    **json.loads(VALID[1]["info"]),
                    draw(st.sampled_from(sorted(gmm.INFO_TYPES))): draw(json_values),
                }
                metadata = {"info": json.dumps(info)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "file.safetensors"
        try:
            write(path, tensors, metadata)
        except Exception:  # an edit safetensors itself cannot write (not a file a user could have)
            assume(False)
        raw = path.read_bytes()
    return draw(edited_bytes(raw))


@st.composite
def edited_bytes(draw, raw: bytes) -> bytes:
    how = draw(st.sampled_from(["keep"] * 5 + ["truncate", "flip", "garbage", "header"]))
    if how == "truncate":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if how == "flip":
        at = draw(st.integers(0, len(raw) - 1))
        return raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
    if how == "garbage":
        return draw(st.binary(max_size=200))
    if how == "header":  # the header claims another shape, dtype or byte range for one tensor
        size = struct.unpack("<Q", raw[:8])[0]
        header, body = json.loads(raw[8 : 8 + size]), raw[8 + size :]
        keys = sorted(k for k in header if k != "__metadata__")
        if keys:
            entry = header[draw(st.sampled_from(keys))]
            field = draw(st.sampled_from(["shape", "dtype", "data_offsets"]))
            if field == "shape":
                entry["shape"] = draw(st.lists(st.integers(0, 2**62), max_size=4))
            elif field == "dtype":
                entry["dtype"] = draw(
                    st.sampled_from(["F64", "F32", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "X"])
                )
            else:
                entry["data_offsets"] = draw(st.lists(st.integers(0, 2**62), min_size=2, max_size=2))
        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + body
    return raw


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory) -> Path:
    return fake_run(tmp_path_factory.mktemp("fuzz") / "run")


@FUZZ
@given(raw=corrupted_file())
def test_every_corrupted_sampler_file_loads_as_a_valid_mixture_or_is_a_one_line_error(fuzz_run, raw):
    samplers.sampler_path(fuzz_run, "gmm").write_bytes(raw)
    event(outcome(fuzz_run))


@st.composite
def benign_file(draw) -> dict[str, torch.Tensor]:
    """A valid mixture changed in ways that keep it one: its components reordered, its latent space shifted and
    scaled, its weights redrawn, its covariances transposed, stored in float32 or float64."""
    order = list(draw(st.permutations(range(K))))
    tensors = {key: value[order] for key, value in VALID[0].items()}
    scale, shift = draw(st.floats(1e-3, 1e3)), draw(st.floats(-1e3, 1e3))
    weights = torch.tensor([0.01, 0, 0]) + torch.tensor(draw(st.lists(st.floats(0, 1), min_size=K, max_size=K)))
    covariances = tensors["covariances"] * scale**2
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    edited = {
        "weights": weights / weights.sum(),
        "means": tensors["means"] * scale + shift,
        "covariances": covariances.mT if draw(st.booleans()) else covariances,
    }
    return {key: value.to(dtype) for key, value in edited.items()}


@settings(FUZZ, max_examples=FUZZ.max_examples // 2)  # each example samples a valid mixture: the slow path
@given(tensors=benign_file())
def test_every_mixture_a_fit_could_give_loads_and_samples_it(fuzz_run, tensors):
    """The checks refuse no mixture `fit-sampler` could have written."""
    write(samplers.sampler_path(fuzz_run, "gmm"), tensors, dict(VALID[1]))
    assert outcome(fuzz_run) == "valid"
    loaded = samplers.load(fuzz_run, "gmm")
    assert all(torch.equal(getattr(loaded, key), tensors[key].double()) for key in gmm.TENSORS)


# --- named faults: the message says which ----------------------------------------------------------------------


def _edit(key: str, change):
    def apply(tensors, metadata):
        tensors[key] = change(tensors[key].clone())
        return tensors, metadata

    return apply


def _set(t: torch.Tensor, index, value) -> torch.Tensor:
    t[index] = value
    return t


def _other_latent_size(tensors, metadata):
    sampler = gmm.fit(torch.randn(60, D + 1, generator=torch.Generator().manual_seed(1)), K)
    return {"weights": sampler.weights, "means": sampler.means, "covariances": sampler.covariances}, metadata


HOSTILE = {
    "negative weight": (_edit("weights", lambda w: w - torch.tensor([0.5, -0.25, -0.25], dtype=w.dtype)), "weight 0"),
    "weights summing to 0.73": (_edit("weights", lambda w: w * 0.73), "weights must be >= 0 and sum to 1 (sum 0.73)"),
    "a component of the wrong latent size": (_other_latent_size, "the run's latent space has 2 dimensions"),
    "a NaN mean": (_edit("means", lambda m: _set(m, (0, 1), float("nan"))), "means hold non-finite values"),
    "an inf covariance": (_edit("covariances", lambda c: _set(c, (1, 0, 0), float("inf"))), "covariances hold non-"),
    "a huge mean": (_edit("means", lambda m: m * 1e300), "means reach"),
    "a huge covariance": (_edit("covariances", lambda c: c * 1e20), "beyond 1e+12"),
    "a covariance not positive-definite": (
        _edit("covariances", lambda c: _set(c, 2, -c[2])),
        "covariance 2 is not pos",
    ),
    "an asymmetric covariance": (_edit("covariances", lambda c: _set(c, (1, 0, 1), 1.0)), "covariance 1 is not symm"),
    "integer weights": (_edit("weights", lambda w: (w * 0).long()), "weights are int64, not float32 or float64"),
    "half-precision means": (_edit("means", lambda m: m.half()), "means are float16"),
    "no components": (lambda t, m: ({k: v[:0] for k, v in t.items()}, m), "means have shape [0, 2]"),
    "three-dimensional means": (_edit("means", lambda m: m[None]), "means have shape [1, 3, 2]"),
    "covariances of one component too few": (_edit("covariances", lambda c: c[1:]), "covariances have shape [2, 2, 2]"),
    "a missing tensor": (lambda t, m: ({k: v for k, v in t.items() if k != "means"}, m), "no tensor 'means'"),
    "an extra tensor": (lambda t, m: ({**t, "extra": torch.zeros(1)}, m), "unexpected tensor 'extra'"),
    "info not JSON": (lambda t, m: (t, {"info": "{not json"}), "'info' is not valid JSON"),
    "info of another sampler": (lambda t, m: (t, {"info": json.dumps({"sampler": "flow"})}), "not a Gaussian mixture"),
    "info with a NaN": (lambda t, m: (t, {"info": '{"mean_log_likelihood": NaN}'}), "not a finite number"),
    "info with the wrong count": (lambda t, m: (t, {"info": json.dumps({"components": 7})}), "says 7 components"),
    "larger than any mixture": (lambda t, m: ({**t, "extra": torch.zeros(400_000)}, m), "bytes, more than a mixture"),
}
DAMAGED_BYTES = {
    "truncated": (lambda raw: raw[: len(raw) // 2], "not a readable safetensors file"),
    "empty": (lambda raw: b"", "not a readable safetensors file"),
    "garbage": (lambda raw: b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not a readable safetensors file"),
    "a header claiming a huge shape": (
        lambda raw: raw.replace(b'"shape":[3]', b'"shape":[300000000000]', 1),
        "not a readable safetensors file",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_damaged_sampler_file_is_a_one_line_error_naming_the_fault(tmp_path, case):
    change, fault = HOSTILE[case]
    run = fake_run(tmp_path / "run")
    write(samplers.sampler_path(run, "gmm"), *change(dict(VALID[0]), dict(VALID[1])))
    assert outcome(run).startswith("error")
    with pytest.raises(RunError, match="^" + str(samplers.sampler_path(run, "gmm"))) as caught:
        samplers.load(run, "gmm")
    assert fault in str(caught.value)


@pytest.mark.parametrize("case", DAMAGED_BYTES)
def test_a_file_that_is_not_safetensors_is_a_one_line_error(tmp_path, case):
    change, fault = DAMAGED_BYTES[case]
    run = fake_run(tmp_path / "run")
    path = samplers.sampler_path(run, "gmm")
    write(path, *VALID)
    assert b'"shape":[3]' in path.read_bytes()  # what the header case edits
    path.write_bytes(change(path.read_bytes()))
    assert outcome(run).startswith("error")
    with pytest.raises(RunError, match=fault):
        samplers.load(run, "gmm")


def test_a_valid_file_loads_bit_for_bit_in_float64_or_float32(tmp_path):
    """The checks refuse nothing `fit-sampler` writes: its own file, the same in float32, a mixture with a weight
    of 0, covariances transposed (they are symmetric)."""
    tensors, metadata = VALID
    variants = {
        "as written": tensors,
        "float32": {k: v.float() for k, v in tensors.items()},
        "a weight of 0": {**tensors, "weights": torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)},
        "transposed covariances": {**tensors, "covariances": tensors["covariances"].mT},
    }
    for name, variant in variants.items():
        run = fake_run(tmp_path / name.replace(" ", "-"))
        write(samplers.sampler_path(run, "gmm"), variant, metadata)
        assert outcome(run) == "valid", name
        loaded = samplers.load(run, "gmm")
        assert torch.equal(loaded.means, variant["means"].double()), name
        assert loaded.info == json.loads(metadata["info"]), name
    assert loaded.sample(3, torch.Generator().manual_seed(0)).shape == (3, D)


def test_the_latent_size_comes_from_the_run_and_a_run_without_one_is_refused(tmp_path):
    for latent_dim in (D + 1, 1):
        run = fake_run(tmp_path / f"z{latent_dim}", latent_dim)
        write(samplers.sampler_path(run, "gmm"), *VALID)
        with pytest.raises(RunError, match=f"means are 2-dimensional, but the run's latent space has {latent_dim}"):
            samplers.load(run, "gmm")
    run = tmp_path / "no-latent"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": {"latent_dim": "2"}, "train": {}}))
    write(samplers.sampler_path(run, "gmm"), *VALID)
    with pytest.raises(RunError, match="config.json: the model section has no latent_dim"):
        samplers.load(run, "gmm")


def test_info_keeps_only_the_fits_own_fields():
    """Whatever else the metadata holds does not reach eval.json (where `**sampler.info` is spread)."""
    info = {**json.loads(VALID[1]["info"]), "available": True, "fd_classifier": 0.0, "description": "x" * 10**5}
    kept, fault = gmm.read_info({"info": json.dumps(info)}, K)
    assert fault is None and set(kept) == set(gmm.INFO_TYPES)


# --- the fit's options ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "components,seed,n_points,message",
    [
        (0, 0, None, "components: must lie in 1..1000, got 0"),
        (1001, 0, None, "components: must lie in 1..1000, got 1001"),
        (10**30, 0, None, "components: must lie in 1..1000"),
        (5, -1, None, "seed: must lie in 0..4294967295"),
        (5, 2**32, None, "seed: must lie in 0..4294967295"),
        (5, 10**40, None, "seed: must lie in 0..4294967295"),
        (65, 0, 64, "components: 65 is more than the 64 training images"),
    ],
)
def test_the_fits_options_are_checked_against_their_real_bounds(components, seed, n_points, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        gmm.check_options(components, seed, n_points)


def test_the_bounds_themselves_are_accepted_by_the_fit():
    points = torch.randn(8, D, generator=torch.Generator().manual_seed(0))
    assert gmm.fit(points, 8, seed=gmm.SEED_MAX).weights.shape == (8,)  # as many components as points, largest seed


def test_posterior_means_that_are_not_finite_are_refused_before_the_fit():
    points = torch.randn(20, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for value in (float("nan"), 1e300):
        bad = points.clone()
        bad[3, 1] = value
        with pytest.raises(RunError, match="posterior means of the training images are not finite or exceed"):
            gmm.fit(bad, 2)


# --- through the command line: sample, eval, explore, fit-sampler -------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A VAE with D latents trained one epoch on 64 digits, with a K-component mixture fitted to it."""
    from vaelab import data
    from vaelab.cli import main

    folder = tmp_path_factory.mktemp("trained")
    digits = data.load("mnist-mini")
    np.savez(
        folder / "digits.npz",
        train_images=digits.train.images[:64].numpy(),
        test_images=digits.test.images[:32].numpy(),
    )
    run = folder / "run"
    common = ["--epochs", "1", "--quiet", "--latent-dim", str(D), "--hidden", "16", "--batch-size", "32"]
    assert main(["train", "--data", str(folder / "digits.npz"), "--out", str(run), *common]) == 0
    assert main(["fit-sampler", str(run), "--components", str(K)]) == 0
    return run


def _copy(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.startswith("vaelab: error: ") and result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr and all(f in result.stderr for f in fragments), result.stderr


CLI_CASES = ["weights summing to 0.73", "a component of the wrong latent size", "an inf covariance", "no components"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_sample_refuses_a_damaged_sampler_file_in_one_line(cli, trained, tmp_path, case):
    run = _copy(trained, tmp_path)
    path = samplers.sampler_path(run, "gmm")
    change, fault = HOSTILE[case]
    write(path, *change(load_file(str(path)), dict(VALID[1])))
    _one_line_error(cli("sample", run, "--sampler", "gmm"), str(path), fault, "vaelab fit-sampler")
    assert not (run / "samples-gmm.png").exists()  # no garbage grid


def test_eval_and_explore_refuse_a_damaged_sampler_file_in_one_line(cli, trained, tmp_path):
    run = _copy(trained, tmp_path)
    path = samplers.sampler_path(run, "gmm")
    path.write_bytes(path.read_bytes()[:-5])
    _one_line_error(cli("eval", run, "--iwae-k", "2", "--quiet"), str(path), "not a readable safetensors file")
    assert not (run / "eval.json").exists()
    tensors = load_file(str(samplers.sampler_path(trained, "gmm")))
    tensors["weights"] = -tensors["weights"]
    write(path, tensors, dict(VALID[1]))
    from vaelab.explorer.session import Session

    with pytest.raises(RunError, match="weights must be >= 0 and sum to 1"):  # `vaelab explore` prints it, exit 2
        Session(run)


@pytest.mark.parametrize(
    "options,fragment",
    [
        (["--seed", "-1"], "seed: must lie in 0..4294967295 (the range scikit-learn's fit takes), got -1"),
        (
            ["--seed", str(2**32)],
            "seed: must lie in 0..4294967295 (the range scikit-learn's fit takes), got 4294967296",
        ),
        (["--seed", str(10**30)], "seed: must lie in 0..4294967295"),
        (["--components", "0"], "components: must lie in 1..1000, got 0"),
        (["--components", str(10**20)], "components: must lie in 1..1000"),
        (["--components", "65"], "components: 65 is more than the 64 training images"),
        (["--sampler", "prior"], "unknown sampler 'prior'; known samplers: gmm"),
        (["--sampler", "../flow"], "unknown sampler '../flow'; known samplers: gmm"),
    ],
)
def test_fit_sampler_checks_its_options_before_the_fit(cli, trained, tmp_path, options, fragment):
    run = _copy(trained, tmp_path)
    before = samplers.sampler_path(run, "gmm").read_bytes()
    result = cli("fit-sampler", run, *options)
    _one_line_error(result, fragment)
    assert "prior" not in result.stderr.split("known samplers:")[-1]  # the prior is not fitted
    assert samplers.sampler_path(run, "gmm").read_bytes() == before
