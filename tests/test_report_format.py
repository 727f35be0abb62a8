"""Known answers of the one value formatter (skal_cxr/report/_format.py)."""

import numpy as np

from skal_cxr.report import format_value


def test_floats_ints_and_strings():
    assert format_value(0.91234) == "0.912"
    assert format_value(0.91264, 2) == "0.91"
    assert format_value(123.6, 0) == "124"
    assert format_value(np.float64(0.5)) == "0.500"  # numpy's float64 is a float
    assert format_value(40) == "40" and format_value(40, 2) == "40"  # ints as they are
    assert format_value("bald") == "bald"


def test_missing_values():
    assert format_value(None) == "–" and format_value(float("nan")) == "–"
    assert format_value(np.nan, missing="-") == "-"
    assert format_value(None, spec=".2f", missing="n/a") == "n/a"


def test_format_spec():
    assert format_value(0.012345, spec=".2g") == "0.012"
    assert format_value(0.25, spec=".3g") == "0.25"
    assert format_value(3, spec=".1f") == "3.0"  # the spec applies to ints too
    assert format_value(-0.01, spec="+.4f") == "-0.0100"
