"""Job status polls answered before routing: the one request clients repeat many times a second.

``GET /api/jobs/{id}`` is most of the server's traffic while jobs run, and its answer is
already a serialised body in :class:`~genesis3d.server.snapshots.JobSnapshots`. Through
FastAPI it still pays for routing, the dependency system, path validation and a response
object (about a millisecond per request on a small CPU, which on a shared machine is what
sets the slowest polls). This plain ASGI middleware answers it directly when it can, with
the same body, headers and token check as the route (:func:`token_accepted`); everything
else, and every request it cannot answer (no or wrong token, a job not in the snapshots, a
malformed id), goes on to the app unchanged, so errors keep their one format.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from genesis3d.server.snapshots import JobSnapshots

_STATUS_PATH = re.compile(r"/api/jobs/([0-9a-f]{32})")


def token_accepted(token: str | None, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header value carries the server's bearer token.

    Args:
        token: the server's token, or None when it has none (loopback): then anything passes.
        authorization: the header's value, e.g. ``"Bearer abc"``, or None when absent.
    """
    if token is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return secrets.compare_digest(given.strip().encode(), token.encode())


class FastJobStatus:
    """ASGI middleware answering ``GET /api/jobs/{id}`` from the job snapshots.

    Args:
        app: the ASGI app it wraps.
        snapshots: the API process's job snapshots.
        token: the server's bearer token, or None.
    """

    def __init__(self, app: Any, *, snapshots: JobSnapshots, token: str | None) -> None:
        self.app = app
        self.snapshots = snapshots
        self.token = token

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _STATUS_PATH.fullmatch(scope["path"])
            if match is not None and not scope.get("query_string"):
                body = self._answer(scope, match.group(1))
                if body is not None:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-length", str(len(body)).encode()),
                                (b"content-type", b"application/json"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)

    def _answer(self, scope, job_id: str) -> bytes | None:
        authorization = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        if not token_accepted(self.token, authorization):
            return None  # the route answers 401 with its message
        return self.snapshots.body(job_id)
