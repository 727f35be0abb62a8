"""Progress bars of a simulation, fed by the record files."""

import threading

from .._results import record_path


class _Progress:
    """tqdm bars of finished runs and rounds, fed by polling the record files.

    Workers may be other processes or machines, so the parent counts the
    lines of the record files (each line is one finished round).
    """

    def __init__(self, results_dir, tasks, schedule, files=(), interval=0.5):
        from tqdm.auto import tqdm

        self.paths = [
            (record_path(results_dir, *t), 1 if t[0] == "baseline" else len(schedule))
            for t in tasks
        ]
        # a file that exists when a task without records is done (the pool's encoder)
        self.files = list(files)
        total_rounds = sum(n for _, n in self.paths)
        self.runs = tqdm(total=len(tasks) + len(self.files), desc="runs  ", unit="run", position=0)
        self.rounds = tqdm(total=total_rounds, desc="rounds", unit="round", position=1)
        self.interval = interval
        self._stop = threading.Event()
        self._update()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _update(self):
        runs = sum(path.is_file() for path in self.files)
        rounds = 0
        for path, n in self.paths:
            try:
                lines = min(n, path.read_bytes().count(b"\n"))
            except OSError:
                lines = 0
            rounds += lines
            runs += lines == n
        if runs > self.runs.n:
            self.runs.update(runs - self.runs.n)
        if rounds > self.rounds.n:
            self.rounds.update(rounds - self.rounds.n)

    def _poll(self):
        while not self._stop.wait(self.interval):
            self._update()

    def close(self):
        self._stop.set()
        self._thread.join()
        self._update()
        self.rounds.close()
        self.runs.close()
