"""The argparse types of ``skal-cxr``'s options (comma lists, seeds, budgets)."""

import argparse
import math

__all__ = ["_list_of", "_int_list", "_float_list", "_seeds", "_str_list", "_budget"]


def _list_of(kind, what):
    """An argparse type: comma-separated values of ``kind``."""

    def parse(text):
        try:
            return [kind(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what}, got {text!r}"
            ) from None

    return parse


_int_list = _list_of(int, "integers")
_float_list = _list_of(float, "numbers")


def _seeds(text):
    if "," in text:
        return _int_list(text)
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count N (seeds 0..N-1) or a comma-separated list, got {text!r}"
        ) from None


def _str_list(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _budget(text):
    """A count (``200``) or a fraction of the pool (``0.2``), checked by ``check_budget``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {text!r}")
    if "." not in text and "e" not in text.lower():
        return int(value)
    return value
