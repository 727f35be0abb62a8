"""What a server does with a labeling project (a mixin of the project).

A mixin of :class:`~skal_cxr.labeling.LabelingProject`: training in the
background (the project's ``training``), keeping database connections open
while the server runs (its ``db``), and the address it was last served at
(which ``skal-cxr label add-rater`` puts in the links it prints).
"""

import json
from contextlib import contextmanager

__all__ = ["ProjectServing"]


class ProjectServing:
    """Background training, kept connections and the served address (a mixin)."""

    def wake_training(self):
        """Make, in the background, any round whose batch is complete (once served).

        Does nothing before :meth:`train_in_background`; a server calls it
        at start to resume a round interrupted by a crash.
        """
        self.training.notify(self)

    def train_in_background(self):
        """Train rounds from now on in a background worker process (the server's mode)."""
        self.training.enable()

    def stop_training(self):
        """End the background training thread and its worker, if any (a running round is lost).

        Nothing the worker has not handed back is kept; :meth:`train_in_background`
        starts them again.
        """
        self.training.close()

    @contextmanager
    def serving(self):
        """While a server runs: database connections are kept and reused.

        On exit the background training, if any, is ended (a running round is
        not recorded) and the connections are closed.

        Yields
        ------
        project : LabelingProject
            This project.
        """
        self.db.reuse_connections()
        try:
            yield self
        finally:
            if self.training.background:
                self.stop_training()
            self.db.close_connections()

    def serve_address(self):
        """Where the project was last served (``host``, ``port``, ``public_host``).

        Returns
        -------
        address : dict
            Empty when it was never served.
        """
        return json.loads(self.db.meta("serve", "{}"))

    def record_serve_address(self, host, port, public_host=None):
        """Record where the project is served (read back by :meth:`serve_address`).

        Parameters
        ----------
        host : str
        port : int
        public_host : str or None, default=None
        """
        self.db.set_meta(
            "serve", json.dumps({"host": host, "port": port, "public_host": public_host})
        )
