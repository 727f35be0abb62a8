"""The read side of a labeling project: labels, agreement, progress, rounds,
status and exports (the labels CSV, the audit trail).

Pure functions of one database snapshot (``_status``), the exports
(``_export``) and the project's mixin that reads them (``_views``). Above ``store``.
"""
