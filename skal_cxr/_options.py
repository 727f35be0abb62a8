"""Command-line options declared once: the parser and the mapping of values come from it.

Each option of ``skal-cxr`` is one :class:`Option`: its flags, type,
help, choices, metavar and where its value goes (``to``: a dotted path into
a configuration, such as ``"estimator.lr"`` for
:func:`~skal_cxr.simulation.simulate` or ``"labels_per_image"`` for
:func:`~skal_cxr.labeling.init_project`). Its default is read from the
same path of the defaults the command passes (the simulation's
configuration, ``init_project``'s signature), never restated.
:func:`add_options` builds the :mod:`argparse` arguments (the only
``add_argument`` calls of the package) and :func:`collect` maps parsed
values back to their paths, so no command reassembles options by hand.
"""

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Option", "add_options", "collect", "given_flags", "lookup", "NOT_DECLARED"]

#: The ``default`` of an option whose argparse default is not set here.
NOT_DECLARED = object()


@dataclass(frozen=True)
class Option:
    """One command-line option or positional argument.

    Parameters
    ----------
    flags : tuple of str
        ``("--lr",)``, ``("--output", "-o")``, or ``("project",)`` for a positional.
    to : str, default=None
        Dotted path the value goes to in :func:`collect`'s result; ``None``:
        the command reads it from the namespace itself.
    help : str, default=None
        ``{default}`` in it is replaced by the default at ``to`` (or
        ``default_at``) in the command's defaults, shown through ``show``.
    type, choices, metavar, dest, action, const, required, version
        As :meth:`argparse.ArgumentParser.add_argument` takes them.
    default : object, default=NOT_DECLARED
        The argparse default. ``NOT_DECLARED``: the default at ``to`` when
        the command asks for its defaults to be filled, else ``None``.
    default_at : str, default=None
        Where the default is read instead of ``to``.
    show : callable, default=None
        Turns the default at ``to`` into what the option takes (and what
        the help shows), e.g. seconds into minutes.
    convert : callable, default=None
        Turns a given value into the value put at ``to``.
    group : str, default=None
        Title of the argument group shown in ``--help``.
    exclusive : str, default=None
        Name of a mutually exclusive group; ``required`` then applies to the group.
    """

    flags: tuple
    to: str | None = None
    help: str | None = None
    type: Callable | None = None
    choices: Any = None
    metavar: str | None = None
    dest: str | None = None
    action: str | None = None
    const: Any = None
    required: bool = False
    version: str | None = None
    default: Any = NOT_DECLARED
    default_at: str | None = None
    show: Callable | None = None
    convert: Callable | None = None
    group: str | None = None
    exclusive: str | None = None

    @property
    def positional(self):
        """Whether this is a positional argument."""
        return not self.flags[0].startswith("-")

    @property
    def name(self):
        """The namespace attribute holding the value."""
        if self.dest is not None:
            return self.dest
        if self.positional:
            return self.flags[0]
        long = next((f for f in self.flags if f.startswith("--")), self.flags[0])
        return long.lstrip("-").replace("-", "_")


def lookup(defaults, path):
    """The value at the dotted ``path`` of nested dicts ``defaults`` (KeyError if absent).

    Parameters
    ----------
    defaults : dict
    path : str

    Returns
    -------
    value : object
    """
    value = defaults
    for key in path.split("."):
        value = value[key]
    return value


def _default(option, defaults):
    """``(found, value)``: the option's default from ``defaults``, as the option takes it."""
    path = option.default_at or option.to
    if defaults is None or path is None:
        return False, None
    try:
        value = lookup(defaults, path)
    except (KeyError, TypeError):
        return False, None
    return True, option.show(value) if option.show is not None else value


def add_options(parser, options, defaults=None, *, fill_defaults=False):
    """Add the declared ``options`` to ``parser`` (their groups made on the way).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    options : sequence of Option
    defaults : dict, default=None
        The command's defaults, nested like the ``to`` paths.
    fill_defaults : bool, default=False
        Make the default at ``to`` the argparse default (else ``None``:
        an option not given is left out of :func:`collect`'s result, and
        the configuration's default applies).

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    groups, exclusive = {}, {}
    for option in options:
        found, value = _default(option, defaults)
        target = parser
        if option.group is not None:
            if option.group not in groups:
                groups[option.group] = parser.add_argument_group(option.group)
            target = groups[option.group]
        kwargs = {}  # no help given: the action's own (--version's)
        if option.help == argparse.SUPPRESS:
            kwargs["help"] = option.help
        elif option.help is not None:
            text = option.help.format(default=value) if "{default" in option.help else option.help
            kwargs["help"] = text.replace("%", "%%")  # argparse formats help with %
        if option.exclusive is not None:
            if option.exclusive not in exclusive:
                exclusive[option.exclusive] = target.add_mutually_exclusive_group(
                    required=option.required
                )
            target = exclusive[option.exclusive]
        elif option.required and not option.positional:
            kwargs["required"] = True
        if option.default is not NOT_DECLARED:
            kwargs["default"] = option.default
        elif fill_defaults and found:
            kwargs["default"] = value
        for key in ("type", "choices", "metavar", "action", "const", "version"):
            if getattr(option, key) is not None:
                kwargs[key] = getattr(option, key)
        if option.dest is not None:
            kwargs["dest"] = option.dest
        target.add_argument(*option.flags, **kwargs)
    return parser


def collect(args, options, *, skip_none=True):
    """The values of ``args`` put at their options' ``to`` paths (nested dicts).

    Parameters
    ----------
    args : argparse.Namespace
    options : sequence of Option
    skip_none : bool, default=True
        Leave out options whose value is ``None`` (not given, no default).

    Returns
    -------
    values : dict
        ``{"estimator": {"lr": 0.01}, ...}``.
    """
    values = {}
    for option in options:
        if option.to is None:
            continue
        value = getattr(args, option.name)
        if value is None and skip_none:
            continue
        if option.convert is not None:
            value = option.convert(value)
        *parents, last = option.to.split(".")
        place = values
        for key in parents:
            place = place.setdefault(key, {})
        place[last] = value
    return values


def given_flags(args, options, prefix, defaults=None):
    """The flags of the options under ``prefix`` given on the command line.

    An option counts as given when its value is not ``None``, ``False`` or
    its default at ``to`` in ``defaults``.

    Parameters
    ----------
    args : argparse.Namespace
    options : sequence of Option
    prefix : str
        A ``to`` path prefix, e.g. ``"data.folder."``.
    defaults : dict, default=None
        The command's defaults (as given to :func:`add_options`).

    Returns
    -------
    flags : dict
        ``{path under prefix: first flag}``, in declaration order.
    """
    flags = {}
    for option in options:
        if option.to is None or not option.to.startswith(prefix):
            continue
        value = getattr(args, option.name)
        found, default = _default(option, defaults)
        if value is None or value is False or (found and value == default):
            continue
        flags[option.to[len(prefix) :]] = option.flags[0]
    return flags
