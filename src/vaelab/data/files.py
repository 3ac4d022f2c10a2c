"""Touching the paths a user gives: every OS failure becomes a one-line `DataError` that names the path.

A path may be missing, a folder where a file is expected (or the reverse), unreadable, a device or a pipe
(`/dev/zero` never ends, a FIFO blocks forever), or carry a newline in its name. Readers go through these
functions rather than `open` and `Path.iterdir`, so none of that reaches the user as a traceback.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from vaelab.errors import DataError, one_line

T = TypeVar("T")


def shown(path: str | os.PathLike) -> str:
    return one_line(os.fspath(path) if not isinstance(path, bytes) else path.decode(errors="backslashreplace"))


def reason(exc: BaseException) -> str:
    """Why an OS call failed, in words (the path is named by the caller, so it is not repeated here)."""
    if isinstance(exc, PermissionError):
        return "permission denied; check the permissions of the file and its folders"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{exc.__class__.__name__}: {exc}"


def status(path: Path) -> os.stat_result | None:
    """`os.stat` of `path` (following links), or None when nothing is there."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:  # a NUL byte in the name: no file can be called that
        return None
    except OSError as exc:  # permission denied on a parent folder, a name too long, a loop of links
        raise DataError(f"{shown(path)}: cannot be accessed ({reason(exc)})") from None


def file_size(path: Path) -> int:
    """The size of the regular file at `path`; a one-line error when it is anything else."""
    info = status(path)
    if info is None:
        raise DataError(f"{shown(path)}: no such file")
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{shown(path)}: is a folder, not a file; give the file itself")
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{shown(path)}: is not a regular file (a device, pipe or socket); give a data file")
    return info.st_size


def open_file(path: Path) -> BinaryIO:
    """Open a regular file for reading (binary); refuses devices and pipes before opening them."""
    file_size(path)
    try:
        return open(path, "rb")  # the caller closes it
    except OSError as exc:
        raise DataError(f"{shown(path)}: cannot be opened ({reason(exc)})") from None


def is_folder(path: Path) -> bool:
    info = status(path)
    return info is not None and stat.S_ISDIR(info.st_mode)


def check_folder(path: Path) -> None:
    info = status(path)
    if info is None:
        raise DataError(f"{shown(path)}: no such folder")
    if not stat.S_ISDIR(info.st_mode):
        raise DataError(f"{shown(path)}: is a file, not a folder; give the folder that holds the images")


def folder_entries(path: Path) -> tuple[list[Path], list[Path]]:
    """`(files, folders)` directly inside `path`, each sorted, hidden names (`.x`, macOS's `._x`) left out."""
    check_folder(path)
    files, folders = [], []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    folders.append(Path(entry.path))
                elif entry.is_file():
                    files.append(Path(entry.path))
    except OSError as exc:
        raise DataError(f"{shown(path)}: cannot list the folder ({reason(exc)})") from None
    by_name = lambda p: p.name  # noqa: E731  (one folder: the same order as the paths', 10x faster on 50,000)
    return sorted(files, key=by_name), sorted(folders, key=by_name)


def one_line_errors(reader: Callable[..., T]) -> Callable[..., T]:
    """Wrap a public reader so that what it raises reaches the user as one line.

    A `DataError` gets its control characters escaped (a file name may hold a newline); a `MemoryError`
    that the header checks did not foresee (another process took the memory) becomes a `DataError`.
    """

    @functools.wraps(reader)
    def wrapper(*args, **kwargs):
        try:
            return reader(*args, **kwargs)
        except DataError as exc:
            raise DataError(one_line(str(exc))) from None
        except MemoryError:
            origin = shown(args[0]) if args else "the data set"
            raise DataError(f"{origin}: not enough memory to load it; close other programs or use less data") from None

    return wrapper
