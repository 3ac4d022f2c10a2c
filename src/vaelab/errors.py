"""vaelab's own exception types.

A `VaelabError` is a user error (a bad file, option or value) or a diagnosed failure (a diverging run).
Its message is one line that says what is wrong and what to do; the command line prints it without a
traceback and exits with `exit_code`.
"""

from __future__ import annotations

MESSAGE_LIMIT = 2000  # characters; a message quoting a hostile file's content stays readable


def one_line(text: str) -> str:
    """`text` with what would break a one-line message escaped: control characters (a newline in a file
    name, in a decoder's message) and undecodable bytes of a file name (lone surrogates)."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    half = MESSAGE_LIMIT // 2  # keep both ends: the path starts a message, the reason ends it
    return text if len(text) <= MESSAGE_LIMIT else text[:half] + " ... " + text[-half:]


class VaelabError(Exception):
    """A problem the user can fix; the CLI prints `vaelab: error: <message>` and exits 2."""

    exit_code = 2


class DataError(VaelabError):
    """A data set that is missing, unreadable, corrupt or inconsistent."""


class ConfigError(VaelabError):
    """An unknown configuration key or an invalid value."""


class RunError(VaelabError):
    """A run directory that is missing, incomplete or incompatible with the request."""


class DivergenceError(VaelabError):
    """Training produced a non-finite loss; the message names the term, the step and what to try."""

    exit_code = 3
