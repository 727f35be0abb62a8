"""The one check of a labeling budget: a count of images, or a fraction of the pool.

:func:`skal_cxr.simulation.simulate` and
:func:`skal_cxr.labeling.init_project` (and both command lines) accept the
same budgets and refuse the others with the same one-line message.
"""

import numbers

__all__ = ["check_budget", "budget_count"]


def _constraints():
    """A count >= 1, or a fraction of the pool in (0, 1].

    Built on first use: the labeling server reads this module at start-up,
    and scikit-learn's constraint classes are not worth importing there.
    """
    from ._validation import Fractions, Integers

    return {"budget": [Integers(1), Fractions()]}


def check_budget(budget, caller_name, *, error, allow_none=False):
    """``budget`` checked: an ``int`` count, or a ``float`` fraction in (0, 1].

    A float over 1 that is a whole number (``200.0``) is the count 200.

    Parameters
    ----------
    budget : int, float or None
        The budget.
    caller_name : str
        Named in the error message.
    error : exception class
        Raised with scikit-learn's one-line message.
    allow_none : bool, default=False
        Accept ``None`` (no budget: the whole pool).

    Returns
    -------
    budget : int, float or None
        The count as an ``int``, or the fraction as a ``float``.
    """
    if budget is None and allow_none:
        return None
    if (
        isinstance(budget, numbers.Real)
        and not isinstance(budget, (bool, numbers.Integral))
        and budget > 1
        and float(budget).is_integer()
    ):
        budget = int(budget)
    from ._validation import InvalidParameterError, check_values

    try:
        budget = check_values({"budget": budget}, _constraints(), caller_name)["budget"]
    except InvalidParameterError as exc:
        raise error(f"{exc} (a count of images, or a fraction of the pool)") from None
    return budget if isinstance(budget, int) else float(budget)


def budget_count(budget, n):
    """The images a checked ``budget`` labels in a pool of ``n`` (``None``: no budget).

    Parameters
    ----------
    budget : int, float or None
        As returned by :func:`check_budget`.
    n : int
        Images in the pool.

    Returns
    -------
    count : int or None
        A count at most ``n``, or a fraction of ``n`` rounded.
    """
    if budget is None:
        return None
    if isinstance(budget, int):
        return min(budget, n)
    return int(round(budget * n))
