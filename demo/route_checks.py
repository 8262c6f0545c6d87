"""Raw requests to Gradio's routes that named something the app lacks: a short 4xx, not a traceback.

Gradio's routes look up what a request names (an event's fn_index, an API name and its arguments, a
component id, a queue session) and let the lookup's KeyError or TypeError escape: the client got a bare 500
"Internal Server Error" and the log an "Exception in ASGI application" traceback of 70-80 lines per request,
which anyone could repeat. This ASGI middleware (inside `UploadGuard`, so every body it reads is already
size-capped) handles each case on its own route only, so a real bug elsewhere still shows:

- `queue/join`, or `run/<name>` (an event without the queue: the Train tab's timer tick), with an fn_index the
  app has no event for: 404, checked before Gradio sees the body;
- `call/v2/<name>` with an unknown name, an unknown or a missing keyword argument: 404 or 422, checked before
  Gradio sees the body, with Gradio's own argument check (`construct_args`);
- `queue/data` or `call/<name>/<event_id>` for a session or event the queue does not hold: Gradio has already
  sent its "session not found" message in the event stream, then raised a 404 the server could not send any
  more; the stream now ends there;
- `component_server` with an unknown component id or a form without its fields: 404 or 400 and one line in
  the log (this route runs the canvas's own code: see `demo/uploads.py`);
- `custom_component/...` with a control character in its path: Gradio prints the path's parts, and a newline
  there starts a log line of the client's own; 404 (the app has no custom components);
- `queue/join` or `call/<name>` for a session holding MAX_UNREAD events whose results its stream has not read yet
  (waiting, running or done): Gradio keeps their messages until then, and one session joining /train_status
  10,000 times without reading grew the server by 90 MB, without end; 429. All sessions together hold at most
  MAX_UNREAD_HELD unread events, the least recently used sessions' dropped first (`demo/unread_results.py`).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from urllib.parse import parse_qs

import gradio as gr
import pydantic
from fastapi import HTTPException
from gradio.data_classes import PredictBody
from gradio_client import utils as client_utils

from . import unread_results
from .messages import quoted, shorten
from .upload_guard import answer, route_of

log = logging.getLogger("pix2pix_studio")

PREFIX = "/gradio_api"
STREAM_ROUTES = re.compile(rf"{PREFIX}/(queue/data|call/(v2/)?[^/]+/[^/]+)")  # an event stream, by session or id
CALL_V2 = re.compile(rf"{PREFIX}/call/v2/([^/]+)")
CALL = re.compile(rf"{PREFIX}/call/[^/]+")  # an API call by position (call/v2/<name>: by keyword)
RUN = re.compile(rf"{PREFIX}/(run|api)/[^/]+/?")  # an event without the queue (the others answer "join the queue")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_UNREAD = 64  # events of one session whose results were not read yet (the page reads its own at once)


class RouteChecks:
    """ASGI middleware: one short answer for a raw request naming what the app lacks, on the routes above."""

    def __init__(self, app):
        self.app = app
        self.reading = Counter()  # sessions whose event stream is open, by the number of streams

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route, method = route_of(scope), scope["method"]
        if method == "GET" and route.startswith(f"{PREFIX}/custom_component/") and CONTROL.search(route):
            return await answer(send, 404, "no such component", close=False)
        if method == "GET" and STREAM_ROUTES.fullmatch(route):
            return await self._stream(scope, receive, send)
        if method == "POST" and route == f"{PREFIX}/component_server":
            return await self._component_server(scope, receive, send)
        if method == "POST" and RUN.fullmatch(route):  # Gradio looks its fn_index up before anything else
            body, receive = await read_body(receive)
            problem = unknown_target(scope["app"].get_blocks(), scope["app"], route, body)
            if problem:
                return await answer(send, *problem, close=False)
        by_target = method == "POST" and (route == f"{PREFIX}/queue/join" or CALL_V2.fullmatch(route))
        if by_target or (method == "POST" and CALL.fullmatch(route)):
            body, receive = await read_body(receive)
            blocks, session = scope["app"].get_blocks(), session_of(body)
            # an event named by its target must exist; every join or call counts against its session's unread
            problem = (unknown_target(blocks, scope["app"], route, body) if by_target else None) \
                or unread_events(blocks, session)
            if problem:
                return await answer(send, *problem, close=False)
            queue = getattr(blocks, "_queue", None)
            unread_results.mark_used(queue, session)
            unread_results.drop_oldest_unread(queue, unread_results.MAX_UNREAD_HELD - 1, self.reading)  # room
        return await self.app(scope, receive, send)

    async def _stream(self, scope, receive, send):
        """Gradio's event stream for a session it does not hold: its "session not found" message, then a 404
        raised after the stream began (Starlette: "response already started"). End the stream there. While it is
        open, its session is in `reading`: its unread results are never dropped under it."""
        started, session = False, stream_session(scope)

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        self.reading[session] += 1
        try:
            await self.app(scope, receive, watched_send)
        except RuntimeError as error:
            cause = error.__cause__
            if not (started and isinstance(cause, HTTPException) and cause.status_code == 404):
                raise
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.reading[session] -= 1
            if not self.reading[session]:
                del self.reading[session]

    async def _component_server(self, scope, receive, send):
        """Gradio looks up the component and reads the form's fields before any code of the app runs."""
        try:
            await self.app(scope, receive, send)
        except KeyError as error:  # an unknown component id, or a form field missing
            missing = error.args[0] if error.args else ""
            if isinstance(missing, int):
                return await refuse(send, 404, f"no component with id {quoted(missing)}")
            await refuse(send, 400, f"a component_server request has no {quoted(missing)} field")
        except pydantic.ValidationError as error:  # e.g. a component id that is no number
            fields = ", ".join(str(e.get("loc", ("?",))[0])[:30] for e in error.errors()[:3])
            await refuse(send, 400, f"a component_server request with a malformed field: {fields}")
        except gr.Error as error:  # the canvas's own refusal (demo/uploads.py), meant for the client
            await refuse(send, 400, shorten(error.message, 200))


def unknown_target(blocks, server, route: str, body: bytes) -> tuple[int, str] | None:
    """(status, message) when a well-formed body names an event or API argument the app lacks; any other body
    goes on to Gradio (its own answers to a malformed one are short: 400 or FastAPI's 422)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    name = CALL_V2.fullmatch(route)
    if name:
        return unknown_argument(blocks, server, name.group(1), payload)
    try:
        fn_index = PredictBody.model_validate(payload).fn_index  # as Gradio reads it ("3", 3.0 and True count)
    except pydantic.ValidationError:
        return None
    if fn_index is None or fn_index in events_of(blocks, payload.get("session_hash")):
        return None
    return 404, f"no event with fn_index {shorten(str(fn_index), 30)}; the app's /config lists them"


def session_of(body: bytes):
    """The session hash a join's or call's body names (None for none, or a malformed body)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload.get("session_hash") if isinstance(payload, dict) else None


def stream_session(scope) -> str | None:
    """The session whose messages an event stream reads, as Gradio finds it: `queue/data?session_hash=`, or for
    `call/NAME/EVENT_ID` the session of the event (its own id when it came without one)."""
    route = route_of(scope)
    if route == f"{PREFIX}/queue/data":
        return parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash", [None])[0]
    event_id, queue = route.rsplit("/", 1)[-1], getattr(scope["app"].get_blocks(), "_queue", None)
    event = getattr(queue, "event_ids_to_events", {}).get(event_id)
    if event is not None:
        return event.session_hash
    ids = getattr(queue, "pending_event_ids_session", {})
    return next((session for session, held in ids.items() if event_id in held), event_id)


def unread_events(blocks, session) -> tuple[int, str] | None:
    """(429, message) when `session` (a body's session hash) holds MAX_UNREAD events whose results were not
    read."""
    # (a Gradio that renamed this leaves the bound off: tests/test_app_limits.py says so; joins still work)
    pending = getattr(getattr(blocks, "_queue", None), "pending_event_ids_session", None)
    if not isinstance(session, str) or not isinstance(pending, dict):
        return None
    unread = len(pending.get(session, ()))
    if unread < MAX_UNREAD:
        return None
    return 429, (f"this session has {unread} events whose results were not read; read them (queue/data, or "
                 "call/NAME/EVENT_ID) before sending more")


def events_of(blocks, session_hash) -> dict:
    """The events Gradio looks an fn_index up in: the session's own (gr.render can add some), else the app's."""
    if isinstance(session_hash, str) and session_hash and session_hash in blocks.state_holder:
        return blocks.state_holder[session_hash].blocks_config.fns
    return blocks.fns


def unknown_argument(blocks, server, api_name: str, payload: dict) -> tuple[int, str] | None:
    """The checks of Gradio's `call/v2` route, made before it: an API name it lists, and keyword arguments its
    own `construct_args` takes (unknown, or a required one missing: Gradio's TypeError, a 500)."""
    info = server.api_info or blocks.get_api_info()
    endpoint = info["named_endpoints"].get("/" + api_name)
    if endpoint is None:
        return 404, f"no API endpoint named {quoted(api_name)}; the app's page lists them (Use via API)"
    arguments = {key: value for key, value in payload.items() if key != "oauth_token"}
    names = [parameter.get("parameter_name") for parameter in endpoint["parameters"]]
    unknown = [key for key in arguments if key not in names]
    if unknown:  # Gradio's message quotes the name whole, newlines and all
        takes = ", ".join(map(str, names)) or "no arguments"
        return 422, shorten(f"/{api_name} has no argument named {quoted(unknown[0])}; it takes {takes}", 300)
    try:
        client_utils.construct_args(endpoint["parameters"], (), arguments)
    except (TypeError, ValueError) as error:  # a required argument missing
        return 422, shorten(str(error).split(". Please click")[0], 200)
    return None


async def read_body(receive):
    """The whole body (capped by UploadGuard, outside) and a receive that hands it on again."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return b"", receive  # the client left: Gradio finds out itself
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body, handed = b"".join(chunks), False

    async def replay():
        nonlocal handed
        if handed:
            return await receive()
        handed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


async def refuse(send, status: int, message: str) -> None:
    """The answer, and one escaped log line: this route runs the canvas's code, so a refusal here is worth a
    line (a client's text may hold newlines)."""
    log.info("refused a component_server request: %s", ascii(message)[1:-1])
    await answer(send, status, message, close=False)
