"""The first checks of every request, before any route runs: ``Host``, body size, token.

:class:`RequestGuard` is a plain ASGI middleware of the labeling app. In
this order it refuses, each time with JSON ``{"detail": "one line"}``:

1. a ``Host`` header that is not one of the allowed hosts (**400**;
   DNS-rebinding protection, never turned off: :func:`check_hosts` refuses
   wildcards and empty names when the app is made);
2. a body announced (``Content-Length``) larger than ``max_body``
   (:data:`~._app.MAX_BODY_BYTES`)
   (**413**), before a byte of it is read;
3. a body sent to an ``/api/`` route without a valid rater token (**401**),
   before it is read, so that nobody without a token makes the server read
   or parse anything;
4. a body whose bytes, counted as they arrive, pass ``max_body``
   (**413**; chunked bodies have no ``Content-Length``);
5. a JSON body that is not UTF-8 JSON the parser can read (invalid UTF-8,
   nesting deeper than the parser's recursion limit, an integer of more
   digits than Python converts): **422**, as for any other invalid body.

A body that passes is handed on to the app unchanged.
"""

import json

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from ...exceptions import LabelingError

__all__ = ["RequestGuard", "check_hosts"]

_BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_NOT_IN_A_HOST = set("*/@?#,\\%") | {" ", "\t", "\r", "\n"}


def check_hosts(hosts):
    """The ``Host`` names to accept, lower-cased; :class:`LabelingError` for a pattern.

    Each must be one literal host name or address: a wildcard (``*``,
    ``*.example.org``), an empty name or one with spaces would turn the
    ``Host`` check (partly) off, so it is refused in one line.

    Parameters
    ----------
    hosts : list of str

    Returns
    -------
    hosts : list of str
    """
    out = []
    for host in hosts:
        name = str(host)
        if not name.strip() or _NOT_IN_A_HOST & set(name):
            raise LabelingError(
                f"refusing host name {name!r}: give the literal name raters' links use "
                "(no wildcard, no empty name); the Host check is never turned off."
            )
        out.append(name.lower())
    return out


def _host_name(header):
    """The name part of a ``Host`` header (without the port), lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):  # [::1]:8765
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _error(status, detail, headers=None):
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class RequestGuard:
    """ASGI middleware: the ``Host`` check, the body limit, the token before the body.

    Parameters
    ----------
    app : ASGI app
        The app to guard.
    project : LabelingProject
        Whose rater tokens are valid.
    allowed_hosts : list of str
        ``Host`` names accepted (see :func:`check_hosts`).
    max_body : int
        Largest body accepted, in bytes.
    """

    def __init__(self, app, project, allowed_hosts, max_body):
        self.app, self.project, self.max_body = app, project, max_body
        self.hosts = set(check_hosts(allowed_hosts))
        self.hosts |= {h.strip("[]") for h in self.hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = _host_name(headers.get("host", ""))
        if host not in self.hosts and host.strip("[]") not in self.hosts:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await _error(400, "invalid Host header.")(scope, receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refused = await self._refusal(scope, headers)
        if refused is not None:
            return await refused(scope, receive, send)
        if scope["method"] not in _BODY_METHODS or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return await self._too_large()(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if body and ctype == "application/json":
            why = _unparseable(body)
            if why is not None:
                return await _error(422, f"invalid request body: {why}")(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    def _too_large(self):
        return _error(413, f"request body larger than {self.max_body} bytes.")

    async def _refusal(self, scope, headers):
        """The answer refusing a request before its body is read, or None."""
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                return _error(400, "invalid Content-Length header.")
            if int(length) > self.max_body:
                return self._too_large()
        path = scope["path"]
        if scope["method"] in _BODY_METHODS and path.startswith("/api/") and path != "/api/health":
            scheme, _, token = headers.get("authorization", "").partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else ""
            name = await run_in_threadpool(self.project.rater_for_token, token or None)
            if name is None:
                return _error(
                    401, "a valid rater token is required.", {"WWW-Authenticate": "Bearer"}
                )
        return None


def _unparseable(body):
    """Why ``body`` is not UTF-8 JSON Python can read, in one line, or None."""
    try:
        json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8."
    except RecursionError:
        return "nested too deeply."
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at character {exc.pos})."
    except ValueError as exc:  # an integer of more digits than int() converts
        return f"a value cannot be read ({' '.join(str(exc).split())[:120]})."
    return None
