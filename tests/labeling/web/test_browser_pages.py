"""The page fixture itself: a route still in flight when a test ends fails no later test."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
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
