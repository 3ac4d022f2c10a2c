"""Devices (vaelab.device): --device resolved, an absent or unknown device refused before anything is written."""

import pytest
import torch

from tests.helpers.runs import (
    ok,
    one_line_error,
    resume,
    snapshot,
    train,
)
from vaelab.device import bf16_units, resolve_device

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(256, 64)


@pytest.mark.usefixtures("no_figures")
def test_device_resolution_and_unavailable_or_invalid_devices(cli, digits, tmp_path):
    """auto and cpu resolve to the CPU on a machine without CUDA or MPS; asking for an absent GPU, or a device that
    does not exist, is one line and exit 2 before anything is written (also on --resume, which may change it).
    Checks a README claim."""
    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    assert resolve_device("auto").type == expected
    out = tmp_path / "run"
    ok(train(cli, digits, out, "vae", "--device", "auto"))
    before = snapshot(out)
    absent = [name for name, there in (("cuda", torch.cuda.is_available()), ("mps", has_mps)) if not there]
    for name in absent:
        message = one_line_error(train(cli, digits, tmp_path / "never", "vae", "--device", name))
        assert f"device: {name} was asked for" in message and "--device cpu" in message, message
        if name == "cuda":
            assert "no CUDA GPU" in message
        assert not (tmp_path / "never").exists()
        assert f"device: {name} was asked for" in one_line_error(resume(cli, out, 2, "--device", name))
        assert snapshot(out) == before
    assert "invalid choice: 'tpu'" in one_line_error(train(cli, digits, tmp_path / "never", "vae", "--device", "tpu"))
    toml = tmp_path / "run.toml"
    toml.write_text('device = "cuda:7x"\n')
    assert "device: must be one of auto, cpu, cuda, mps" in one_line_error(
        cli("train", "--config", toml, "--out", tmp_path / "never")
    )
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize(
    "amx, avx512_bf16, expected",
    [(True, True, "this CPU has AMX"), (False, True, "this CPU has AVX512-BF16"), (False, False, None)],
)
def test_bf16_units_come_from_the_cpus_probes(monkeypatch, amx, avx512_bf16, expected):
    """`--precision auto` picks bf16 only where a CPU multiplies bf16 in hardware: AMX or AVX512-BF16. Without
    either, oneDNN emulates bf16 and a run would be slower, so the answer is None. An absent device is None too
    (its own error comes where it is used)."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert bf16_units("cpu") == expected
    if not torch.cuda.is_available():
        assert bf16_units("cuda") is None
