"""Argument checks shared by every area: each failure is `Invalid` or `TooLarge` and says what to do."""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from teamroom.config import AGENT_NAME
from teamroom.errors import Invalid, TooLarge
from teamroom.schemas.common import SYSTEM_AGENT, Limits


def agent_name(value: str | None, field: str = "agent") -> str:
    if value is None or value == "":
        raise Invalid(f"{field} is required: pass your agent name (or set TEAMROOM_AGENT for the server)")
    if not isinstance(value, str) or not AGENT_NAME.fullmatch(value):
        raise Invalid(
            f"{field} {value!r} is not a valid name: 1-64 of letters, digits, '.', '_', '-', starting with a letter"
            " or digit, e.g. 'builder-1'"
        )
    if value == SYSTEM_AGENT and field == "agent":
        raise Invalid(
            f"{SYSTEM_AGENT!r} is the system's own name (the sender of delivery_failed); call yourself anything else"
        )
    return value


def number_in(field: str, value: float | None, bounds: tuple[float, float], default: float | None = None):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Invalid(f"{field} must be a number from {bounds[0]} to {bounds[1]}")
    if not bounds[0] <= value <= bounds[1]:
        raise Invalid(f"{field} must be from {bounds[0]} to {bounds[1]}, got {value}")
    return value


def whole(field: str, value: float | None, bounds: tuple[int, int], default: int | None = None) -> int | None:
    """A whole number within ``bounds`` (or ``default`` when left out)."""
    checked = number_in(field, value, bounds, default)
    if checked is not None and checked != int(checked):
        raise Invalid(f"{field} must be a whole number")
    return None if checked is None else int(checked)


def text(field: str, value: str | None, max_chars: int, *, required: bool = False, max_bytes: int | None = None):
    """Printable text within its limit; over a byte limit is `too_large`, over a char limit `invalid`."""
    if value is None:
        if required:
            raise Invalid(f"{field} is required")
        return None
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string")
    if required and not value.strip():
        raise Invalid(f"{field} must not be empty")
    if "\x00" in value:
        raise Invalid(f"{field} contains a NUL character; remove it")
    if max_bytes is not None:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise TooLarge(f"{field} is {size} bytes; the limit is {max_bytes} (64 KiB): send less, or split it")
    elif len(value) > max_chars:
        raise Invalid(f"{field} is {len(value)} characters; the limit is {max_chars}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{field} is not valid unicode (lone surrogate); send UTF-8 text") from None
    return value


# Characters a label may not hold: controls (C0, DEL, C1), invisible format characters (zero-width
# space and joiners, bidi controls, soft hyphen, BOM), line and paragraph separators.
_UNPRINTABLE = {"Cc": "a control character", "Cf": "an invisible character", "Zl": "a line break", "Zp": "a line break"}


def label(field: str, value: str | None, max_chars: int = 128) -> str | None:
    """A short identifier-like string (role, capability, thread id, tag, scope, key, branch), as it reads.

    Refused rather than cleaned, as C0 controls always were: a character that does not print, or a
    space at either end, makes a second label that prints like the first ('builder' and 'builder '
    are two roles, 'main' and 'main\u200b' two scopes with two owners), and a C1 control such as
    U+009B (CSI) rewrites what a terminal shows.
    """
    if value is None:
        return None
    text(field, value, max_chars, required=True)
    bad = next((c for c in value if unicodedata.category(c) in _UNPRINTABLE), None)
    if bad is not None:
        kind = _UNPRINTABLE[unicodedata.category(bad)]
        raise Invalid(
            f"{field} {value!r} contains {kind} (U+{ord(bad):04X}); use printable text only: letters, digits,"
            " punctuation and spaces between words"
        )
    if value != value.strip():
        raise Invalid(f"{field} {value!r} starts or ends with a space; pass {value.strip()!r}")
    return value


def labels(field: str, values: list[str] | None, max_count: int, max_chars: int = 128) -> list[str] | None:
    if values is None:
        return None
    if not isinstance(values, list):
        raise Invalid(f"{field} must be a list of strings")
    if len(values) > max_count:
        raise Invalid(f"{field} has {len(values)} items; the limit is {max_count}")
    return list(dict.fromkeys(label(f"{field}[{i}]", v, max_chars) for i, v in enumerate(values)))


def one_of(field: str, value: str | None, allowed: tuple[str, ...] | list[str], default: str | None = None):
    if value is None:
        return default
    if value not in allowed:
        raise Invalid(f"{field} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def payload(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid("payload must be a JSON object, e.g. {\"pr\": 12}")
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"payload is not plain JSON: {exc}") from None
    except RecursionError:
        raise Invalid("payload is nested too deeply") from None
    if len(encoded.encode("utf-8", "surrogatepass")) > Limits.PAYLOAD_BYTES:
        raise TooLarge(f"payload is over {Limits.PAYLOAD_BYTES} bytes as JSON; send less or reference a file")
    text("payload", encoded, 0, max_bytes=Limits.PAYLOAD_BYTES)
    return value


def addresses(to: str | list[str] | None) -> list[str] | None:
    """Who a message or handoff goes to: names, '@all' or '@role', checked; None when not given."""
    if to is None:
        return None
    specs = [to] if isinstance(to, str) else to
    if not isinstance(specs, list) or not specs:
        raise Invalid("to must be a name, a list of names, '@all' or '@role'")
    if len(specs) > Limits.RECIPIENTS:
        raise Invalid(f"to lists {len(specs)} addresses; the limit is {Limits.RECIPIENTS}")
    out = []
    for spec in specs:
        if isinstance(spec, str) and spec.startswith("@"):
            if spec == "@":
                raise Invalid("'@' needs a role after it, e.g. '@builders', or use '@all'")
            label("to", spec[1:], 64)
            out.append(spec)
        else:
            out.append(agent_name(spec, "to"))
    return out
