"""The rounds of a labeling project and the process that runs them.

``_rounds`` makes the cold start, the training and query rounds and the
predictions (through the round engine); ``_jobs`` are the typed jobs and
results; ``_process`` is the worker process at a lower priority than the
server; ``_scheduler`` is the served project's background thread that starts
a round when a batch is done. Above ``store``; below ``web``.
"""
