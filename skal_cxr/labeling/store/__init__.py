"""The state of a labeling project on disk: the SQLite database (schema, snapshots,
transactions, integrity and backup), the writer's lock, the queue and its leases, labels, raters,
adjudication, the registered images and their files, access rules, the pool's
image cache, the model checkpoints, and the films a PACS project left out.

The bottom layer: it imports nothing of ``worker``, ``read``, ``web`` or ``pacs``.
"""
