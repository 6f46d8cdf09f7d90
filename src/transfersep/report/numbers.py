"""How the report writes a number, in figures, tables and prose alike: "—" where there is none, and
never a signed zero ("-0.00" and "+0.00" read as a direction the value does not have)."""

from __future__ import annotations

import pandas as pd


def ok(v) -> bool:
    """Whether ``v`` is a value to show (not None, not NaN, not pandas' missing value)."""
    if v is None:
        return False
    try:
        return not bool(pd.isna(v))
    except (TypeError, ValueError):  # not a scalar: a value all the same
        return True


def num(v, fmt: str = "{:.2f}") -> str:
    """``v`` formatted with ``fmt``, "—" when absent, without the sign of a value that rounds to zero."""
    if not ok(v):
        return "—"
    text = fmt.format(v)
    try:
        zero = text[0] in "+-" and float(text) == 0
    except ValueError:  # a format with words around the number
        zero = False
    return text[1:] if zero else text
