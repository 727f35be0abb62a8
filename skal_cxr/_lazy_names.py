"""Public names of a package loaded on first use (:pep:`562`).

A package's ``__init__`` lists where each public name is defined;
:func:`lazy_names` returns the module-level ``__getattr__`` and ``__dir__``
that import that module only when the name is first read. Light entry points
(``skal-cxr label serve``) so start without importing torch; ``from package
import Name`` works as before.
"""

import importlib

__all__ = ["lazy_names"]


def lazy_names(package, names):
    """The ``__getattr__`` and ``__dir__`` of a package whose names load lazily.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict of str to str or None
        Public name -> the module (relative to ``package``, e.g. ``"._loop"``)
        that defines it under the same name; ``None``: the name is the
        submodule ``package.name`` itself.

    Returns
    -------
    getattr_ : callable
        The module's ``__getattr__``: imports the name's module, caches the
        value in the package's namespace, and raises :class:`AttributeError`
        for other names.
    dir_ : callable
        The module's ``__dir__``: its loaded names and the lazy ones.
    """
    namespace = importlib.import_module(package).__dict__

    def getattr_(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        where = names[name]
        if where is None:
            value = importlib.import_module(f".{name}", package)
        else:
            value = getattr(importlib.import_module(where, package), name)
        namespace[name] = value  # later reads skip this function
        return value

    def dir_():
        return sorted(set(namespace) | set(names))

    return getattr_, dir_
