"""Named remote data sets (`mnist`, `fashion-mnist`): download once into a cache, verify, then read.

Every file is checked against its published MD5 before use, both right after download and when read
from the cache. Downloads stream into a temporary file beside the target and are renamed into place only
once complete and verified, so a dropped connection never leaves a half-written file in the cache.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from vaelab.data import files
from vaelab.data.files import shown
from vaelab.errors import DataError

CACHE_ENV = "VAELAB_DATA_DIR"
MIRROR_ENV = "VAELAB_DATA_MIRROR"  # a base URL tried instead of the official sources (a local mirror)


@dataclass(frozen=True)
class RemoteSet:
    name: str
    sources: tuple[str, ...]  # base URLs, tried in order
    md5: dict[str, str]  # file name -> published MD5
    classes: tuple[str, ...]
    about: str


REMOTE_SETS = {
    "mnist": RemoteSet(
        name="mnist",
        # Yann LeCun's page is the official home; PyTorch's mirror serves the same files when it refuses.
        sources=("https://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        classes=tuple(str(d) for d in range(10)),
        about="MNIST handwritten digits (LeCun, Cortes, Burges), 60,000 train / 10,000 test, 1x28x28",
    ),
    "fashion-mnist": RemoteSet(
        name="fashion-mnist",
        sources=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        about="Fashion-MNIST (Xiao, Rasul, Vollgraf; Zalando), 60,000 train / 10,000 test, 1x28x28",
    ),
}


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: the argument, else $VAELAB_DATA_DIR, else $XDG_CACHE_HOME/vaelab or ~/.cache/vaelab."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vaelab"


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached_md5(target: Path, name: str) -> str:
    """The MD5 of a file already in the cache; a folder, device or unreadable file there is an error."""
    with files.open_file(target) as handle:
        try:
            digest = hashlib.md5(usedforsecurity=False)
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        except OSError as exc:
            raise DataError(
                f"{shown(target)}: cannot be read ({files.reason(exc)}); "
                f"delete it and run `vaelab data download {name}`"
            ) from None
    return digest.hexdigest()


def _fetch(url: str, target: Path, md5: str, timeout: float) -> None:
    """Stream `url` into a temporary file beside `target`, verify its MD5 and length, then rename it."""
    handle, temp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            while block := response.read(1 << 16):
                out.write(block)
                digest.update(block)
                received += len(block)
        if declared is not None and received != int(declared):
            raise DataError(f"{url}: connection closed after {received} of {declared} bytes; try again")
        if digest.hexdigest() != md5:
            raise DataError(f"{url}: checksum mismatch (MD5 {digest.hexdigest()}, expected {md5}); file discarded")
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def ensure_files(
    name: str, cache_dir: str | Path | None = None, sources: list[str] | None = None, timeout: float = 30.0
) -> Path:
    """Make sure the named set's files are in the cache and verified; download what is missing."""
    remote = REMOTE_SETS[name]
    folder = cache_root(cache_dir) / name
    if sources is None:
        mirror = os.environ.get(MIRROR_ENV)
        sources = [mirror] if mirror else list(remote.sources)
    for filename, md5 in remote.md5.items():
        target = folder / filename
        if files.status(target) is not None:
            if _cached_md5(target, name) == md5:
                continue
            raise DataError(
                f"{shown(target)}: checksum mismatch (expected MD5 {md5}); "
                f"delete it and run `vaelab data download {name}`"
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"{shown(folder)}: cannot create the download cache ({files.reason(exc)}); "
                f"point ${CACHE_ENV} or --cache-dir at a writable folder"
            ) from None
        failures = []
        for base in sources:
            url = base.rstrip("/") + "/" + filename
            try:
                _fetch(url, target, md5, timeout)
                break
            except DataError as exc:
                failures.append(str(exc))
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                failures.append(f"{url}: {reason}")
        else:
            raise DataError(
                f"could not download {name} ({failures[-1]}); place the files {', '.join(remote.md5)} "
                f"in {folder} by hand, or use the embedded data set: --data mnist-mini"
            )
    return folder
