"""Reading the annotations back from Label Studio's API (a stand-in server here)."""

import http.server
import json
import threading

import pytest
from _ls_tasks import CONFIG, annotation_event, make_backend_dir

from skal_cxr.label_studio import Backend, load_settings


@pytest.fixture
def export_server():
    """Serves ``/api/projects/1/export`` (with ``Token secret``) from a mutable list."""
    tasks = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path.startswith("/api/projects/1/export?exportType=JSON")
            if not ok or self.headers.get("Authorization") != "Token secret":
                self.send_response(401 if ok else 404)
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps(tasks).encode())

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", tasks
    httpd.shutdown()
    httpd.server_close()


def _exported(task, *annotations):
    return {**task, "annotations": [a["annotation"] for a in annotations]}


def test_setup_syncs_tasks_and_annotations_and_a_restart_catches_up(tmp_path, export_server):
    url, exported = export_server
    folder, _, tasks = make_backend_dir(tmp_path, retrain_every=100)
    first = annotation_event(tasks[0], 1, "normal", "2026-01-01T00:00:01Z")
    second = annotation_event(tasks[1], 2, "pneumonia", "2026-01-01T00:00:02Z")
    exported[:] = [_exported(tasks[0], first), _exported(tasks[1], second)] + tasks[2:]

    backend = Backend(load_settings(folder))
    backend.setup("1.17", CONFIG, hostname=url, access_token="secret")
    assert backend.last_error is None
    assert backend.store.consensus() == {"1": 0, "2": 1}
    assert len(backend.store.state["tasks"]) == len(tasks)

    # while the backend is down: one annotation deleted, one changed, one added
    newer = annotation_event(tasks[1], 3, "normal", "2026-01-01T00:00:03Z")
    third = annotation_event(tasks[2], 4, "pneumonia", "2026-01-01T00:00:04Z")
    exported[:3] = [tasks[0], _exported(tasks[1], second, newer), _exported(tasks[2], third)]
    again = Backend(load_settings(folder, label_studio_url=url, api_token="secret"))
    assert again.try_sync()
    assert again.store.consensus() == {"2": 0, "3": 1}
    assert again.store.state["changes"] == 2 + 3  # (2 at setup, 3 since)


def test_a_refused_token_is_reported_not_raised(tmp_path, export_server):
    url, _ = export_server
    folder, _, _ = make_backend_dir(tmp_path)
    backend = Backend(load_settings(folder))
    assert backend.setup("1.17", CONFIG, hostname=url, access_token="wrong") == {
        "model_version": "skal_cxr-cold-start"
    }
    assert "sync from Label Studio failed" in backend.last_error
