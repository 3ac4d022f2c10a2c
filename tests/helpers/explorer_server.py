"""What the explorer's server tests share: tiny trained runs, the real server in this process with a one-call
client, `vaelab explore` in a child process (its stderr kept), a raw socket for requests cut short, and the check
that an answer is a one-line JSON error."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

TINY_RUNS = {  # the arguments of `vaelab train` after the data and --out, for each run name
    "mlp2": ["--latent-dim", "2"],
    "conv3": ["--arch", "conv", "--latent-dim", "3", "--channels", "8,16", "--hidden", "32"],
    "gan2": ["--model", "gan", "--latent-dim", "2"],
}


def train_runs(data: Path, root: Path, names: list[str]) -> dict[str, Path]:
    """Train each named tiny run of TINY_RUNS for one epoch on `data` (in this process); {name: run directory}."""
    from vaelab.cli import main

    for name in names:
        args = ["train", "--data", str(data), "--epochs", "1", "--quiet", "--out", str(root / name), *TINY_RUNS[name]]
        assert main(args) == 0, name
    return {name: root / name for name in names}


class Client:
    """The real server (uvicorn on 127.0.0.1) for opened sessions, in a thread of this process, and a one-call
    client. With `log=True` uvicorn leaves logging alone, so that its records reach pytest's `caplog`."""

    def __init__(self, sessions, log: bool = False):
        import uvicorn

        from vaelab.explorer.server import bind, create_app

        self.sessions = sessions
        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        logging = {"log_config": None, "log_level": "warning"} if log else {"log_level": "critical"}
        config = uvicorn.Config(create_app(sessions), access_log=False, lifespan="off", **logging)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    def call(self, method, path, body=None, json_body=None, headers=None):
        """(status, headers, body bytes) of one request."""
        return call(self.port, method, path, body, json_body, headers)

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)


def call(port: int, method: str, path: str, body=None, json_body=None, headers=None, timeout: float = 30):
    """(status, lower-cased headers, body bytes) of one request to 127.0.0.1:port."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def one_line_error(result, status: int | tuple[int, ...], *fragments: str) -> str:
    """The message of an error answer with `status` (or one of them): one line of JSON {"error": ...} that holds
    every fragment."""
    code, headers, body = result
    assert code in ((status,) if isinstance(status, int) else status), (code, body[:300])
    assert headers["content-type"].startswith("application/json"), headers
    text = body.decode()
    assert "\n" not in text, text
    message = json.loads(text)["error"]
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def cut_short(port: int, head: bytes, sent: bytes) -> None:
    """Send a request's head and the first bytes of its body, then close the connection (an aborted upload)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + sent)


def multipart_head(path: str, boundary: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


class ExploreProcess:
    """`vaelab explore RUN... --no-browser` in a child process; its stderr goes to a file (read with `stderr()`)."""

    def __init__(self, runs: list[Path], *args: str, wait_for_url: bool = True, timeout: float = 120):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
        self.err = tempfile.TemporaryFile("w+")
        command = [sys.executable, "-m", "vaelab", "explore", *map(str, runs), "--no-browser", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.err, text=True, env=env)
        self.url = self.port = None
        if wait_for_url:
            self.wait_for_url(timeout)

    def wait_for_url(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.url is None:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError(f"vaelab explore exited: {self.stderr()}")
            match = re.search(r"(http://127\.0\.0\.1:(\d+)/)", line)
            if match:
                self.url, self.port = match.group(1), int(match.group(2))
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("vaelab explore printed no URL")

    def wait_for_stderr(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            assert self.process.poll() is None, self.stderr()
            assert time.monotonic() < deadline, f"no {text!r} on stderr: {self.stderr()}"
            time.sleep(0.01)

    def stderr(self) -> str:
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def interrupt(self, times: int = 1, gap: float = 0.05, timeout: float = 30) -> int:
        """Ctrl+C (SIGINT) `times` times; the exit code."""
        for _ in range(times):
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
            time.sleep(gap)
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.err.close()
