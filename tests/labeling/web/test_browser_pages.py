"""The browser tests' own ground: the page fixture, and waiting under the app's CSP.

A route still in flight when a test ends fails no later test. The labeling
page forbids ``eval`` (``script-src 'self'``); Playwright's
``wait_for_function`` with a bare expression evaluates it at every poll after
the first, which that policy refuses, so a condition not true at once fails
(on a loaded machine: flaky). Every wait passes a function instead.
"""

import ast
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_CSP_PAGE = b'<p id="p">0</p><script src="/later.js"></script>'
_LATER_JS = b"setTimeout(() => { document.getElementById('p').textContent = '1'; }, 300);"


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path in ("/csp", "/later.js"):  # the labeling page's policy, no eval
            body = _CSP_PAGE if self.path == "/csp" else _LATER_JS
            self.send_response(200)
            kind = "text/html" if self.path == "/csp" else "text/javascript"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Security-Policy", "script-src 'self'")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        time.sleep(0.5)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def slow_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _passthrough(route):
    response = route.fetch()
    route.fulfill(response=response)


def test_a_route_in_flight_when_the_test_ends(new_page, slow_server):
    page = new_page()
    page.goto(slow_server + "/page")
    page.route("**/slow*", _passthrough)
    # The routed request is in flight (its fetch waits on the server) when the test returns.
    page.evaluate("(u) => { fetch(u); }", slow_server + "/slow")
    page.wait_for_timeout(100)


def test_the_next_page_opens_cleanly(new_page, slow_server):
    page = new_page()
    page.goto(slow_server + "/page")
    assert page.text_content("body") == "ok"


def test_waiting_for_a_condition_under_the_pages_csp(new_page, slow_server):
    """A function polled under ``script-src 'self'``, true only after 0.3 s."""
    page = new_page()
    page.goto(slow_server + "/csp")
    page.wait_for_function("() => document.getElementById('p').textContent === '1'")


def _bare_waits(path):
    """``(line, source)`` of each ``wait_for_function`` given a bare expression string."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "wait_for_function"
            and node.args
        ):
            try:
                source = ast.literal_eval(node.args[0])
            except ValueError:
                continue
            head = source.lstrip()
            if not (head.startswith(("function", "async")) or "=>" in head.split("{")[0]):
                yield node.lineno, source


def test_every_wait_passes_a_function():
    tests = Path(__file__).resolve().parents[2]
    bare = [
        f"{path.relative_to(tests)}:{line}: {source!r}"
        for path in tests.rglob("*.py")
        for line, source in _bare_waits(path)
    ]
    assert not bare, "wait_for_function with a bare expression (eval under the CSP):\n" + "\n".join(
        bare
    )
