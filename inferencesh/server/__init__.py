"""The local protocol server: PROTOCOL.md on your machine, with built-in apps and faults.

::

    from inferencesh.server import LocalServer

    with LocalServer(speed=50) as server:       # 127.0.0.1, ephemeral port
        client = inference(api_key="test", base_url=server.url)

``serve(host, port)`` runs the same server in the foreground (``infsh serve``).
Needs the ``server`` extra (starlette, uvicorn, sse-starlette, pillow).

Two dialects, one task store, one runner: ``LocalServer()`` /
``create_app()`` / ``serve()`` / ``infsh serve`` speak PROTOCOL.md
(``dialect="v1"``, the default); ``dialect="hosted"`` (``infsh serve
--dialect hosted``) speaks the hosted API's dialect (HOSTED.md), which the
official ``inferencesh`` 0.36 client works against unchanged: envelopes by
``X-API-Version`` (none: legacy ``{"success", "status", "data"}``; ``2``:
the bare DTO; else ``{"data", "messages": []}``), problem+json errors typed
``https://inference.sh/errors/<code>``, hosted status codes (cancel passes
through 8 cancelling to 12), TaskDTOs with their status history and log
records, ``GET /tasks/{id}/status``, ``"wait": true`` runs, and streams in
NDJSON or SSE by ``Accept`` that open with the current state (a whole
TaskDTO; a chat's latest messages and the chat) and go on with partial
updates, ``delta`` events and typed chat events, heartbeats
(``{"type": "heartbeat"}`` / ``: heartbeat``) after ``heartbeat`` seconds
of silence, no ids and no replay. The hosted writers are ``_hosted_wire``
(tasks), ``_hosted_chats`` (chats) and the routes ``_hosted``; each module
says where it chose something HOSTED.md leaves open.

Built-in apps (every delay divided by ``speed``): ``infsh/echo``,
``infsh/flux-schnell`` (``{"prompt", "steps"?}``: the whole status flow, a
real PNG, answered as its URL on this server), ``infsh/image-info``
(``{"image": <URL of an uploaded file>}``: its width, height and format),
``infsh/sleep`` (``{"seconds"}``, cancellable), ``infsh/fail`` (``{"message"?}``),
``infsh/count`` (``{"n"}``: n updates at full speed),
``infsh/llm`` (``{"prompt", "reasoning"?}``: its answer streamed word by
word: ``delta`` events in the hosted dialect, ``partial_output`` previews in
v1). In the hosted dialect, ``infsh/flux-schnell`` logs a tqdm-style line
per step and the apps' logs say they are simulations.

Files, both dialects (``_files``): ``POST /files`` (with the key) answers
each file's ``uri`` and ``upload_url``; ``PUT /uploads/<token>`` (no key: the
token is the credential, as a pre-signed URL's) takes the bytes, streamed to
a temporary directory; ``GET /files/<id>/<name>`` (no key, ``Range``) serves
them; 413 above ``max_file_bytes``.

Built-in agent: ``infsh/assistant`` (any ``@version``), a deterministic
scripted assistant (``_assistant``): it thinks in two chunks, then answers
word by word; "weather in <City>" makes it call the client tool
``get_weather {"city": ...}`` and wait for ``POST /tools/{id}``; "what did I
say" recalls the chat's previous message; "count to <n>" gives a long
answer; the word "fail" ends the turn ``failed``. A run on a chat whose turn
is still going is ``409``; ``POST /chats/{id}/stop`` answers ``200`` even
with no turn going; a tool result for a call whose turn is over is ``409``.

Where PROTOCOL.md leaves a choice, this server: answers problem+json with
``"type": "about:blank"``; sends events with ``\\n`` line ends; sends nothing at
all (not even ``retry:``) on a stream resumed at the terminal event; keeps
Idempotency-Keys for the life of the server; answers ``400`` to a
``Last-Event-ID`` that is not a non-negative integer.

Fault injection
---------------
Faults are specs (dicts) given per task in the run input as
``"_faults": [spec, ...]`` (removed from the input the app sees) and per
server as ``LocalServer(faults=[...])`` (armed on every task and every agent
turn). An agent turn takes its own in ``POST /agents/run``'s input, next to
``"text"`` (connection kinds, ``status`` and ``overlap`` only; a chat's
stream serves its latest turn, and a ``malformed`` event there is a
``message``). Every spec has a ``"kind"`` and an optional ``"times"``: how
many times it fires, counted per task or turn (default 1; -1 = every time).
``"after": k`` counts the events sent on one connection, replayed ones
included (in the hosted dialect: the objects sent, the opening snapshot
included, heartbeats never); a connection fault fires once at most per
connection, and not at all if the terminal event comes first. Every kind
works in both dialects except ``overlap`` (v1 only: the hosted dialect has
no ``Last-Event-ID``); where the table says "event", read "object" (an
NDJSON line or an SSE ``data:`` block) for the hosted dialect.

==============  ===================================  =======================================
kind            fields                               on the wire
==============  ===================================  =======================================
``close``       ``after``                            after k events the response ends
                                                     cleanly (terminating chunk)
``reset``       ``after``                            after k events the TCP connection is
                                                     aborted with a RST (SO_LINGER 0)
``cut``         ``after``                            the first half of event k+1's bytes,
                                                     then a clean end of the response
``torn``        ``after``                            a chunk header promising all of event
                                                     k+1, only half of it, then FIN: the
                                                     chunked framing is broken
``stall``       ``after``, ``seconds``               after k events nothing at all (no
                                                     heartbeat) for ``seconds`` real seconds
                                                     (not divided by speed), then on
``malformed``   ``after``                            after k events one event with the next
                                                     id and ``data: {not json``, then a
                                                     clean end (hosted: the line
                                                     ``{not json``, or ``data: {not json``
                                                     in SSE)
``mute``        ``after``                            after k events only heartbeats, for as
                                                     long as the client stays: no further
                                                     event, the terminal one included, while
                                                     the task runs on to its end (only a
                                                     client that re-reads the task learns it
                                                     finished)
``status``      ``code`` (429/500/502/503),          the stream request is answered with
                ``retry_after``?                     that status (problem+json,
                                                     ``Retry-After`` when given)
``overlap``     ``back`` (default 1)                 a stream request with
                                                     ``Last-Event-ID: n`` replays from
                                                     ``n - back`` (events the client has);
                                                     v1 only
``run_status``  ``code`` (429/503), ``retry_after``? ``POST /apps/run`` is answered with that
                                                     status before any task exists; counted
                                                     per distinct request body
``run_drop``    (none)                               ``POST /apps/run`` creates the task
                                                     (registering its Idempotency-Key), then
                                                     answers 503; a retry with the same key
                                                     gets the same task
==============  ===================================  =======================================

A spec that never fires leaves every exchange exactly as PROTOCOL.md says.
An invalid spec makes ``POST /apps/run`` answer 422 (``LocalServer`` raises
``ValueError``). ``Retry-After`` carries the number as given (``1``, ``0.2``).

For tests, a ``LocalServer`` exposes ``open_connections``, ``open_streams``
and ``requests`` (records of every request: method, path, the
``Last-Event-ID``, ``Idempotency-Key``, ``Authorization``, ``User-Agent``,
``Accept`` and ``X-API-Version`` headers, and the response status).
"""

from __future__ import annotations

#: The top-level modules of the ``server`` extra (and of what they bring), for the message below.
_EXTRA_MODULES = frozenset({"starlette", "uvicorn", "sse_starlette", "PIL", "anyio", "h11"})

try:
    from ._app import RequestRecord, create_app
    from ._runner import LocalServer, serve
except ImportError as exc:  # the client-only install: say what to install, not where it failed
    if (exc.name or "").partition(".")[0] not in _EXTRA_MODULES:
        raise
    raise ModuleNotFoundError(
        f'inferencesh.server needs the server extra (no module named {exc.name!r}): pip install "inferencesh[server]"',
        name=exc.name,
    ) from None

__all__ = ["LocalServer", "RequestRecord", "create_app", "serve"]
