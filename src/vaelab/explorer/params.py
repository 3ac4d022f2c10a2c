"""The explorer's request parameters, parsed with bounds: every number the server reads from text (a path, a query,
a header, a JSON body) goes through this module, so that none reaches `int()` unchecked.

Why not `int(text)` after `text.isdigit()`: `isdigit` accepts Arabic-Indic and full-width digits (which `int`
converts), and `int` refuses more than 4,300 digits with a ValueError (and is quadratic in their number below that).
An integer here is ASCII digits, an optional leading '-', at most MAX_DIGITS of them; then its range is checked.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DIGITS = 30  # more than any bound checked here (2**63 has 19 digits): longer text is refused unconverted
MAX_SHOWN = 40  # characters of a bad value quoted in an error message


class BadRequest(Exception):
    """A request the server refuses: `status` is the HTTP answer's, the message one line for the user."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class HugeInteger(int):
    """A JSON integer of more than MAX_DIGITS digits, never converted: it stands as its sign times 10**MAX_DIGITS
    (beyond every bound checked here, so that the range check refuses it) and shows itself by its length."""

    digits: int

    def __new__(cls, text: str) -> HugeInteger:
        self = super().__new__(cls, -(10**MAX_DIGITS) if text.startswith("-") else 10**MAX_DIGITS)
        self.digits = len(text.lstrip("-"))
        return self

    def __repr__(self) -> str:
        return f"an integer of {self.digits:,} digits"


def shown(value: Any) -> str:
    """`repr(value)` cut to MAX_SHOWN characters (a value sent to the server can be a megabyte long)."""
    if isinstance(value, str) and len(value) > MAX_SHOWN:
        return f"{value[:MAX_SHOWN]!r}... ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text):,} characters)"


# --- numbers in text: a path, a query, a header --------------------------------------------------------------


def integer_text(text: str, name: str, lo: int, hi: int, status: int = 400) -> int:
    """The integer written in `text` (ASCII digits with an optional leading '-'), within lo..hi."""
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit() and len(digits) <= MAX_DIGITS):
        raise BadRequest(f"{name}: must be an integer in {lo}..{hi}, got {shown(text)}", status)
    return integer(int(text), name, lo, hi, status)


FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def flag(text: str, name: str) -> bool:
    if text.lower() not in FLAGS:
        raise BadRequest(f"{name}: must be 1 or 0 (true or false), got {shown(text)}")
    return FLAGS[text.lower()]


def choice(text: Any, name: str, options: list[str] | tuple[str, ...]) -> str:
    if not isinstance(text, str) or text not in options:
        raise BadRequest(f"{name}: must be one of {', '.join(options)}, got {shown(text)}")
    return text


# --- JSON bodies ---------------------------------------------------------------------------------------------


def _json_integer(text: str) -> int:
    # the C scanner hands over ASCII digits only; their length is what needs a bound
    return HugeInteger(text) if len(text.lstrip("-")) > MAX_DIGITS else int(text)


def json_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object; integers longer than MAX_DIGITS become `HugeInteger`s, out of every range."""
    try:
        value = json.loads(body, parse_int=_json_integer)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON ({exc})") from None
    except RecursionError:
        raise BadRequest("the body is JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def integer(value: Any, name: str, lo: int, hi: int, status: int = 400) -> int:
    """A JSON integer (not a bool, not a float) within lo..hi."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadRequest(f"{name}: must be an integer in {lo}..{hi}, got {shown(value)}", status)
    return int(value)


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{name}: must be true or false, got {shown(value)}")
    return value


def vector(value: Any, name: str, length: int, bound: float, what: str = "the latent dimension") -> list[float]:
    """A list of `length` finite numbers in [-bound, bound]; `what` says where the length comes from."""
    if not isinstance(value, list):
        raise BadRequest(f"{name}: expected a list of {length} numbers, got {type(value).__name__}")
    if len(value) != length:
        raise BadRequest(f"{name}: expected {length} numbers ({what}), got {len(value)}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise BadRequest(f"{name}: every entry must be a number")
    if not all(math.isfinite(v) for v in value if isinstance(v, float)):
        raise BadRequest(f"{name}: holds NaN or infinite values")
    if not all(-bound <= v <= bound for v in value):  # compares integers exactly, without float()
        raise BadRequest(f"{name}: values must lie in [-{bound:g}, {bound:g}] (the prior is N(0, I))")
    return [float(v) for v in value]
