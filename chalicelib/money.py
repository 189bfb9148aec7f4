"""Money as integer micro-units (1/1,000,000 of the deployment currency).

Amounts are plain `int`s everywhere. Decimal text is parsed exactly, prices finer than a
micro-unit are kept as exact fractions, and rounding happens once, half away from zero,
when a ledger amount is produced. No `float` is accepted on any path.
"""

from __future__ import annotations

import re
from fractions import Fraction

MICROS_PER_UNIT = 1_000_000

# An optional sign, digits, and at most one decimal point; no exponent, no spaces.
_DECIMAL_TEXT = re.compile(r"^(?P<sign>-?)(?P<whole>\d+)(?:\.(?P<frac>\d+))?$")
_MAX_DIGITS = 18


class InvalidAmount(ValueError):
    """Raised when text is not an exact decimal amount in micro-units."""


def parse_micros(text: str, *, allow_negative: bool = False) -> int:
    """Parse decimal text such as "8.03" into micro-units (8,030,000).

    Raises InvalidAmount for anything but plain decimal text, for more than six decimals
    and for a negative amount unless `allow_negative` is set.
    """
    if not isinstance(text, str):
        raise InvalidAmount("amount must be decimal text such as \"20.00\"")

    match = _DECIMAL_TEXT.match(text.strip())
    if match is None:
        raise InvalidAmount(f"amount {text!r} is not a decimal number such as \"20.00\"")

    whole, frac = match["whole"], match["frac"] or ""
    if len(frac) > 6:
        raise InvalidAmount(f"amount {text!r} has more than 6 decimal places")
    if len(whole) > _MAX_DIGITS - 6:
        raise InvalidAmount(f"amount {text!r} is too large")

    micros = int(whole) * MICROS_PER_UNIT + int(frac.ljust(6, "0"))
    if match["sign"] == "-":
        if not allow_negative:
            raise InvalidAmount(f"amount {text!r} must not be negative")
        micros = -micros
    return micros


def format_micros(micros: int, *, min_decimals: int = 2) -> str:
    """Format micro-units as decimal text with at least `min_decimals` places: 7500 -> "0.0075"."""
    require_int(micros)

    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_UNIT)
    frac_text = f"{frac:06d}".rstrip("0").ljust(min_decimals, "0")
    return f"{sign}{whole}.{frac_text}" if frac_text else f"{sign}{whole}"


def parse_rate(text: str) -> Fraction:
    """Parse a price such as "0.0000555" into an exact number of micro-units per unit."""
    if not isinstance(text, str) or _DECIMAL_TEXT.match(text.strip()) is None:
        raise InvalidAmount(f"price {text!r} is not a decimal number such as \"0.0075\"")
    return Fraction(text.strip()) * MICROS_PER_UNIT


def round_half_up(value: Fraction) -> int:
    """Round an exact value to whole micro-units, halves away from zero."""
    magnitude = abs(value)
    rounded = int(magnitude + Fraction(1, 2))
    return rounded if value >= 0 else -rounded


def require_int(value: object) -> int:
    """Return `value` if it is an int (not a bool); raise TypeError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"money must be an int of micro-units, got {type(value).__name__}")
    return value


def money_json(micros: int) -> dict[str, object]:
    """Render an amount for API responses as decimal text plus the integer."""
    return {"amount": format_micros(micros), "micros": require_int(micros)}
