"""`vaelab explore`'s HTTP API, served in this process by the real server (uvicorn on 127.0.0.1), on tiny runs
trained here: decode, grid, encode (test image, upload, drawn), interpolate, sample, and the bad requests."""

import http.client
import io
import json
import os
import re
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

if not os.environ.get("CI"):  # CI installs the explore extra: there, its absence must fail, not skip
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runs(digits_npz, tmp_path_factory):
    """Three tiny trained runs: an MLP VAE with a 2-D latent, a conv VAE with a 3-D one, and a GAN."""
    from vaelab.cli import main

    data = digits_npz(400, 100)
    root = tmp_path_factory.mktemp("explore-runs")
    specs = {
        "mlp2": ["--latent-dim", "2"],
        "conv3": ["--arch", "conv", "--latent-dim", "3", "--channels", "8,16", "--hidden", "32"],
        "gan2": ["--model", "gan", "--latent-dim", "2"],
    }
    for name, extra in specs.items():
        args = ["train", "--data", str(data), "--epochs", "1", "--quiet", "--out", str(root / name), *extra]
        assert main(args) == 0, name
    return {name: root / name for name in specs}


class Client:
    """A real HTTP server for the sessions, in a thread of this process, and a one-call client."""

    def __init__(self, sessions):
        import uvicorn

        from vaelab.explorer.server import bind, create_app

        self.sessions = sessions
        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(sessions), log_level="critical", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    def call(self, method, path, body=None, json_body=None, headers=None):
        """(status, headers, body bytes) of one request."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        result = response.status, dict(response.getheaders()), response.read()
        connection.close()
        return result

    def json(self, method, path, **kwargs):
        status, _, body = self.call(method, path, **kwargs)
        assert status == 200, (status, body)
        return json.loads(body)

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def client(runs):
    from vaelab.explorer.session import open_sessions

    client = Client(open_sessions([runs["mlp2"], runs["conv3"], runs["gan2"]]))
    yield client
    client.close()


def assert_error(result, status, *fragments):
    """A 4xx answer whose body is one line of JSON {"error": ...} containing every fragment."""
    code, headers, body = result
    assert code == status, (code, body)
    assert headers["content-type"].startswith("application/json")
    text = body.decode()
    assert "\n" not in text
    message = json.loads(text)["error"]
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def png_of(array, mode=None, size=None):
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    if size:
        image = image.resize(size)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_runs_say_what_each_kind_can_do(client):
    runs = client.json("GET", "/api/runs")["runs"]
    mlp, conv, gan = runs
    assert [r["id"] for r in runs] == [0, 1, 2]
    assert mlp["has_encoder"] and mlp["has_likelihood"] and mlp["latent_dim"] == 2 and mlp["shape"] == [1, 28, 28]
    assert len(mlp["kl_per_dim"]) == 2 and all(k >= 0 for k in mlp["kl_per_dim"]) and len(mlp["active"]) == 2
    assert [p["labels"] for p in mlp["planes"]] == [["z[0]", "z[1]"]]
    principal = conv["planes"][0]
    assert principal["labels"] == ["PC1", "PC2"] and len(principal["axes"]) == 2 and len(principal["axes"][0]) == 3
    assert 0 < principal["share"][1] <= principal["share"][0] and sum(principal["share"]) <= 1 + 1e-6
    axes = np.array(principal["axes"])
    assert np.allclose(axes @ axes.T, np.eye(2), atol=1e-5)  # orthonormal: the page projects with dot products
    assert f"PC1 {principal['share'][0]:.0%}" in principal["description"]
    assert not gan["has_encoder"] and not gan["has_likelihood"] and gan["kl_per_dim"] is None
    assert "no encoder" in gan["no_encoder_reason"] and gan["samplers"] == ["N(0, I)"]
    assert mlp["classes"] == [str(i) for i in range(10)]


def test_points_are_the_test_posterior_means(client):
    points = client.json("GET", "/api/runs/0/points")
    assert len(points["means"]) == 100 and len(points["labels"]) == 100 and len(points["means"][0]) == 2
    encoded = client.json("POST", "/api/runs/0/encode?test=7")
    assert np.allclose(points["means"][7], encoded["mean"], atol=1e-3)
    assert client.json("GET", "/api/runs/2/points")["means"] == []


def test_decode_raw_and_png_give_the_model_s_image(client):
    z = [0.3, -1.2]
    status, headers, raw = client.call("POST", "/api/runs/0/decode?format=raw", json_body={"z": z})
    assert status == 200 and headers["x-shape"] == "28,28,1" and len(raw) == 28 * 28
    status, headers, png = client.call("POST", "/api/runs/0/decode?format=png", json_body={"z": z})
    assert status == 200 and headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(png)))
    assert np.array_equal(pixels, np.frombuffer(raw, np.uint8).reshape(28, 28))
    assert np.array_equal(client.sessions[0].decode([z])[0, :, :, 0], pixels)  # the adapter, called directly
    other = client.call("POST", "/api/runs/0/decode", json_body={"z": [-2.0, 2.0]})[2]
    assert other != raw  # a different point decodes to a different image
    for run, d in ((1, 3), (2, 2)):  # the conv VAE and the GAN's generator
        status, _, raw = client.call("POST", f"/api/runs/{run}/decode", json_body={"z": [0.1] * d})
        assert status == 200 and len(raw) == 784 and len(set(raw)) > 1


def test_bad_decode_requests_get_one_line_errors_and_the_server_keeps_serving(client):
    post = lambda body, path="/api/runs/0/decode", **kw: client.call("POST", path, body=body, **kw)
    assert_error(client.call("POST", "/api/runs/0/decode", json_body={"z": [1.0]}), 400, "expected 2 numbers", "got 1")
    assert_error(client.call("POST", "/api/runs/1/decode", json_body={"z": [1.0, 2.0]}), 400, "expected 3 numbers")
    assert_error(post(b'{"z": [NaN, 1]}'), 400, "NaN")
    assert_error(post(b'{"z": [Infinity, 1]}'), 400, "NaN or infinite")
    assert_error(client.call("POST", "/api/runs/0/decode", json_body={"z": [1e9, 0]}), 400, "[-100, 100]")
    assert_error(client.call("POST", "/api/runs/0/decode", json_body={"z": ["a", 0]}), 400, "number")
    assert_error(client.call("POST", "/api/runs/0/decode", json_body={"z": [True, 0]}), 400, "number")
    assert_error(client.call("POST", "/api/runs/0/decode", json_body={"z": "0,1"}), 400, "list")
    assert_error(client.call("POST", "/api/runs/0/decode", json_body={}), 400, "z:")
    assert_error(client.call("POST", "/api/runs/0/decode", json_body=[0, 1]), 400, "JSON object")
    assert_error(post(b'{"z": [1' + b"0" * 400 + b", 0]}"), 400, "[-100, 100]")  # an integer no float holds
    assert_error(post(b'{"z": [1e400, 0]}'), 400, "NaN or infinite")
    assert_error(post(b"[" * 100_000 + b"]" * 100_000), 400, "nested too deeply")
    assert_error(post(b"z=0,1"), 400, "not valid JSON")
    assert_error(post(b"\xff\xfe"), 400, "not valid JSON")
    assert_error(post(b'{"z": [' + b"0," * 600_000 + b"0]}"), 413, "too large")
    assert_error(client.call("POST", "/api/runs/0/decode?format=jpeg", json_body={"z": [0, 0]}), 400, "format")
    assert_error(client.call("POST", "/api/runs/9/decode", json_body={"z": [0, 0]}), 404, "no such run")
    assert_error(client.call("GET", "/api/runs/0/decode"), 405)
    assert_error(client.call("GET", "/api/nothing"), 404)
    assert_error(client.call("GET", "/api/runs/0/test/100.png"), 400, "0..99")
    assert client.call("POST", "/api/runs/0/decode", json_body={"z": [0, 0]})[0] == 200


def test_concurrent_decodes_all_answer_with_their_own_image(client):
    zs = [[np.sin(k), np.cos(3 * k)] for k in range(48)]
    expected = client.sessions[0].decode(zs).reshape(48, -1)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda z: client.call("POST", "/api/runs/0/decode", json_body={"z": z}), zs))
    assert all(status == 200 for status, _, _ in results)
    assert all(np.array_equal(np.frombuffer(body, np.uint8), row) for (_, _, body), row in zip(results, expected))


def test_grid_is_the_decoded_box_of_the_plane(client):
    body = {"origin": [0, 0, 0.5], "axes": [[1, 0, 0], [0, 1, 0]], "box": [-1, 1, -2, 0], "n": 4}
    status, headers, raw = client.call("POST", "/api/runs/1/grid", json_body=body)
    assert status == 200 and headers["x-shape"] == "112,112,1"
    mosaic = np.frombuffer(raw, np.uint8).reshape(112, 112)
    # row 0 is the top of the box (v = 0 side): cell (0, 3) is centred at u = 0.75, v = -0.25
    cell = client.sessions[1].decode([[0.75, -0.25, 0.5]])[0, :, :, 0]
    assert np.array_equal(mosaic[:28, 84:112], cell)
    assert_error(client.call("POST", "/api/runs/1/grid", json_body={**body, "box": [1, -1, 0, 1]}), 400, "u0 < u1")
    assert_error(client.call("POST", "/api/runs/1/grid", json_body={**body, "n": 500}), 400, "n:")
    assert_error(client.call("POST", "/api/runs/1/grid", json_body={**body, "axes": [[1, 0, 0]]}), 400, "axes")


def test_encode_a_test_image_an_upload_and_a_resized_upload(client):
    by_index = client.json("POST", "/api/runs/0/encode?test=3")
    assert len(by_index["mean"]) == 2 and all(s > 0 for s in by_index["std"])
    terms = by_index["elbo"]
    assert terms["recon"] > 0 and terms["kl"] >= 0 and terms["elbo"] == pytest.approx(-(terms["recon"] + terms["kl"]))
    assert sum(by_index["kl_per_dim"]) == pytest.approx(terms["kl"], rel=1e-4)
    assert len(by_index["samples"]) == 8 and len(by_index["samples_z"]) == 8
    assert by_index["reconstruction"].startswith("data:image/png;base64,") and by_index["note"] is None

    status, _, png = client.call("GET", "/api/runs/0/test/3.png")
    assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
    uploaded = client.json("POST", "/api/runs/0/encode", body=png, headers={"Content-Type": "image/png"})
    assert np.allclose(uploaded["mean"], by_index["mean"], atol=1e-5) and uploaded["note"] is None

    digit = np.asarray(Image.open(io.BytesIO(png)))
    bigger = client.json("POST", "/api/runs/0/encode", body=png_of(digit, size=(84, 84)))
    assert "resized from 84x84 to 28x28" in bigger["note"]
    assert np.allclose(bigger["mean"], by_index["mean"], atol=0.3)  # the same digit, resampled twice
    rgb = client.json(
        "POST", "/api/runs/0/encode", body=png_of((np.repeat(digit[:, :, None], 3, 2) // [1, 2, 3]).astype(np.uint8))
    )
    assert "converted to grey" in rgb["note"]
    inverted = client.json("POST", "/api/runs/0/encode?invert=1", body=png_of(255 - digit))
    assert np.allclose(inverted["mean"], by_index["mean"], atol=1e-5)

    conv = client.json("POST", "/api/runs/1/encode", body=png)  # the same image, the other run (side by side)
    assert len(conv["mean"]) == 3 and "elbo" in conv


def test_bad_uploads_get_one_line_errors(client):
    post = lambda body, run=0: client.call("POST", f"/api/runs/{run}/encode", body=body)
    assert_error(post(b"this is not an image"), 415, "not an image")
    assert_error(post(b""), 400, "empty")
    png = client.call("GET", "/api/runs/0/test/0.png")[2]
    assert_error(post(png[: len(png) // 2]), 400, "upload:")
    bmp = io.BytesIO()
    Image.new("L", (4, 4)).save(bmp, "BMP")
    header = bytearray(bmp.getvalue())
    header[18:26] = struct.pack("<ii", 60_000, 60_000)  # a header that claims 3.6 gigapixels
    assert_error(post(bytes(header)), 413, "too large")
    assert_error(post(png, run=2), 409, "no encoder")
    assert_error(client.call("POST", "/api/runs/0/encode?test=x"), 400, "test:")
    assert_error(client.call("POST", "/api/runs/0/encode?test=100"), 400, "0..99")
    assert client.json("POST", "/api/runs/0/encode?test=0")["mean"]


def test_interpolate_linear_and_spherical(client):
    a, b = [1.0, -1.0], [-1.0, 2.0]
    linear = client.json("POST", "/api/runs/0/interpolate", json_body={"a": a, "b": b, "steps": 7})
    path = np.array(linear["z"])
    assert path.shape == (7, 2) and len(linear["images"]) == 7
    assert np.allclose(path[0], a) and np.allclose(path[-1], b) and np.allclose(path[3], np.add(a, b) / 2)
    spherical = client.json(
        "POST", "/api/runs/0/interpolate", json_body={"a": a, "b": b, "steps": 5, "spherical": True}
    )
    norms = np.linalg.norm(spherical["z"], axis=1)
    assert np.allclose(spherical["z"][-1], b, atol=1e-5) and norms.min() > np.linalg.norm(np.add(a, b) / 2)
    gan = client.json("POST", "/api/runs/2/interpolate", json_body={"a": a, "b": b, "steps": 3})
    assert len(gan["images"]) == 3
    for bad, fragment in (
        ({"steps": 1}, "steps"),
        ({"steps": 10_000}, "steps"),
        ({"spherical": "yes"}, "spherical"),
        ({"b": [0.0]}, "b:"),
    ):
        assert_error(client.call("POST", "/api/runs/0/interpolate", json_body={"a": a, "b": b, **bad}), 400, fragment)


def test_sample_from_the_prior(client):
    first = client.json("POST", "/api/runs/2/sample", json_body={"n": 5, "seed": 3})
    again = client.json("POST", "/api/runs/2/sample", json_body={"n": 5, "seed": 3})
    assert np.array(first["z"]).shape == (5, 2) and first["z"] == again["z"] and len(first["images"]) == 5
    assert client.json("POST", "/api/runs/0/sample", json_body={"n": 2})["images"]
    assert_error(client.call("POST", "/api/runs/0/sample", json_body={"n": 0}), 400, "n:")
    assert_error(client.call("POST", "/api/runs/0/sample", json_body={"sampler": "flow"}), 400, "sampler")


def test_the_page_is_served_and_needs_nothing_from_outside(client):
    status, _, page = client.call("GET", "/")
    assert status == 200 and b'<canvas id="draw"' in page
    static = {m for m in re.findall(rb'(?:src|href)="(static/[^"]+)"', page)}
    assert {b"static/main.js", b"static/explorer.css"} <= static
    from vaelab.explorer.server import static_dir

    files = sorted(p.name for p in static_dir().iterdir() if p.suffix in (".js", ".css"))
    assert {"main.js", "http.js", "paint.js", "geometry.js", "map.js", "run.js", "explorer.css"} <= set(files)
    imported = set()
    for name in files:
        status, headers, body = client.call("GET", f"/static/{name}")
        assert status == 200 and body, name
        assert not re.search(rb"https?://", body), f"{name} fetches from outside: the page must work offline"
        if name.endswith(".js"):
            assert "javascript" in headers["content-type"]
            imported |= {m.decode() for m in re.findall(rb"from '\./([\w.]+)'", body)}
    assert imported and imported <= set(files), imported - set(files)  # every module a module imports is served


def one_line_error(result, *fragments):
    """Exit 2 and one `vaelab: error:` line (after any loading messages), no traceback."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("vaelab: error:") or line.startswith("vaelab explore: error:"), result.stderr
    for fragment in fragments:
        assert fragment in line, (fragment, line)


def test_cli_errors_before_serving(cli, runs, tmp_path, monkeypatch):
    one_line_error(cli("explore", tmp_path / "nowhere", "--no-browser"), "no such run directory")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    one_line_error(cli("explore", runs["mlp2"], broken, "--no-browser"), "config.json", "not valid JSON")
    from vaelab.explorer.server import bind

    taken = bind("127.0.0.1", 0)
    taken.listen()  # another server holds the port
    try:
        result = cli("explore", runs["mlp2"], "--no-browser", "--port", taken.getsockname()[1])
    finally:
        taken.close()
    one_line_error(result, "already in use")
    assert "loading" not in result.stderr  # the port is checked before any run is loaded
    one_line_error(cli("explore", runs["mlp2"], "--port", "70000"), "port")
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the explore extra were not installed
    result = cli("explore", runs["mlp2"], "--no-browser")
    one_line_error(result, 'pip install "vaelab[explore]"')
    assert result.stderr.count("\n") == 1


def test_a_sampler_file_damaged_while_serving_is_a_409_with_one_line(runs, tmp_path):
    """A run's file that goes bad after the explorer opened it (here a fitted sampler overwritten with garbage) gets
    the one-line message naming the file, as a 409, not a 500; the server keeps serving. Found by hardening."""
    import shutil

    from vaelab.cli import main
    from vaelab.explorer.session import open_sessions

    run = tmp_path / "mlp2"
    shutil.copytree(runs["mlp2"], run)
    assert main(["fit-sampler", str(run), "--components", "2"]) == 0
    client = Client(open_sessions([run]))
    try:
        assert len(client.json("POST", "/api/runs/0/sample", json_body={"n": 2, "sampler": "gmm"})["z"]) == 2
        (run / "sampler-gmm.safetensors").write_bytes(b"not a safetensors file")
        result = client.call("POST", "/api/runs/0/sample", json_body={"n": 2, "sampler": "gmm"})
        assert_error(result, 409, "sampler-gmm.safetensors", "fit-sampler")
        assert len(client.json("POST", "/api/runs/0/sample", json_body={"n": 2})["z"]) == 2
    finally:
        client.close()
