"""Downloads of named sets, against a server on 127.0.0.1 that this test starts."""

import gzip
import hashlib
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from tests.helpers.files import write_idx
from vaelab import data
from vaelab.data import download
from vaelab.errors import DataError


class Handler(BaseHTTPRequestHandler):
    files: dict = {}
    requests: list = []
    mode = "ok"

    def do_GET(self):  # noqa: N802
        type(self).requests.append(self.path)
        body = self.files.get(self.path.rsplit("/", 1)[-1])
        if body is None:
            self.send_error(404)
            return
        if self.mode == "corrupt":
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.mode == "drop":  # half the body, then hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", 12), ("t10k", 4)):
        for kind, array in (
            ("images-idx3", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
            ("labels-idx1", np.arange(n, dtype=np.uint8) % 10),
        ):
            path = write_idx(tmp_path / "x", array)
            files[f"{prefix}-{kind}-ubyte.gz"] = gzip.compress(path.read_bytes())
    Handler.files, Handler.requests, Handler.mode = files, [], "ok"
    remote = download.RemoteSet(
        name="mnist",
        sources=("http://127.0.0.1:1/",),
        md5={k: hashlib.md5(v).hexdigest() for k, v in files.items()},
        classes=tuple("0123456789"),
        about="test",
    )
    monkeypatch.setitem(download.REMOTE_SETS, "mnist", remote)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(download.MIRROR_ENV, f"http://127.0.0.1:{httpd.server_port}/")
    yield httpd
    httpd.shutdown()


def test_download_then_cached(server, tmp_path):
    cache = tmp_path / "cache"
    ds = data.load("mnist", cache_dir=cache)
    assert (len(ds.train), len(ds.test)) == (12, 4) and ds.classes[0] == "0"
    assert len(Handler.requests) == 4
    data.load("mnist", cache_dir=cache)
    assert len(Handler.requests) == 4  # second load reads the verified cache


def test_cache_dir_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "envcache"))
    data.load("mnist")
    assert sorted(os.listdir(tmp_path / "envcache" / "mnist")) == sorted(Handler.files)


@pytest.mark.parametrize("mode, message", [("corrupt", "checksum mismatch"), ("drop", "")])
def test_bad_download_leaves_no_file(server, tmp_path, mode, message):
    Handler.mode = mode
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=f"could not download mnist.*{message}.*mnist-mini"):
        data.load("mnist", cache_dir=cache)
    assert os.listdir(cache / "mnist") == []  # nothing half-written, no temporary file


def test_corrupted_cache_file_is_detected(server, tmp_path):
    cache = tmp_path / "cache"
    data.load("mnist", cache_dir=cache)
    target = cache / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-3])
    with pytest.raises(DataError, match="checksum mismatch.*delete it"):
        data.load("mnist", cache_dir=cache)


@pytest.mark.e2e
def test_offline_cli_error_is_one_line(cli_process, tmp_path, monkeypatch):
    monkeypatch.setenv(download.MIRROR_ENV, "http://127.0.0.1:9/")  # the discard port: nothing listens
    result = cli_process("data", "download", "fashion-mnist", "--cache-dir", tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "place the files" in result.stderr and "mnist-mini" in result.stderr


def test_download_cache_that_cannot_be_used(tmp_path):
    (tmp_path / "a-file").write_bytes(b"x")
    with pytest.raises(DataError, match="cannot create the download cache"):
        data.load("mnist", cache_dir=tmp_path / "a-file")  # fails before any download is tried
    (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").mkdir(parents=True)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: is a folder, not a file"):
        data.load("mnist", cache_dir=tmp_path / "cache")
