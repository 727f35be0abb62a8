"""The version of skal_cxr, in one place (read by setup.cfg without importing torch)."""

__version__ = "0.2.0"
