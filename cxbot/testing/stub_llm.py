"""An OpenAI-compatible chat-completions server for tests, standard library only.

:class:`StubLLMServer` runs a :class:`http.server.ThreadingHTTPServer` in a daemon
thread on ``127.0.0.1`` (a free port) and answers the calls real clients make —
the ``openai`` SDK and ``langchain_openai.ChatOpenAI`` — so tests exercise the whole
HTTP path without a network or a model::

    with StubLLMServer(lambda req: f"echo: {req.last_user}") as llm:
        client = OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        ...
        assert llm.requests[0].system == "You are a bot."

Endpoints:

- ``POST /v1/chat/completions`` — a ``chat.completion`` JSON body, or with
  ``"stream": true`` a ``text/event-stream`` of ``chat.completion.chunk`` events
  (sent with chunked transfer encoding) ending in ``data: [DONE]``.
- ``GET /v1/models`` — a list holding the server's model.
- anything else — 404 with an OpenAI-style error body; a body that is not a JSON
  object with a ``messages`` list — 400.

The reply to a chat request is, in order of precedence: a pending failure
(:meth:`StubLLMServer.fail_next`), a scripted reply (:meth:`StubLLMServer.script`),
the responder, or ``"stub reply to: " + last_user``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["Responder", "StubLLMServer", "StubRequest"]

_HOST = "127.0.0.1"
_CHAT_PATH = "/v1/chat/completions"
_MODELS_PATH = "/v1/models"
_PIECE = re.compile(r"\S+\s*|\s+")

_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "unprocessable_entity_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True)
class StubRequest:
    """One chat-completions request as the stub server received it."""

    model: str
    """The ``model`` of the request (the server's model when the body names none)."""
    messages: tuple[dict[str, str], ...]
    """``{"role": ..., "content": ...}`` per message; list-of-parts content is joined to text."""
    stream: bool
    """Whether the client asked for a streamed (server-sent events) reply."""
    body: Mapping[str, object]
    """The full JSON body as received."""

    @property
    def last_user(self) -> str:
        """The content of the last ``user`` message (``""`` if there is none)."""
        for message in reversed(self.messages):
            if message["role"] == "user":
                return message["content"]
        return ""

    @property
    def system(self) -> str:
        """The ``system`` (and ``developer``) messages joined by newlines (``""`` if none)."""
        return "\n".join(
            m["content"] for m in self.messages if m["role"] in ("system", "developer")
        )


Responder = Callable[[StubRequest], str]
"""Gets the parsed request, returns the assistant text."""


class _BadRequestError(Exception):
    """The request body is not a usable chat-completions request."""


def _flatten_content(content: object) -> str:
    """Message content as text: strings as is, text parts concatenated, ``None`` as ``""``."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "".join(texts)
    raise _BadRequestError(f"message content must be a string or a list of parts, got {content!r}")


def _parse_request(raw: bytes, default_model: str) -> StubRequest:
    """Parse and check a chat-completions body; raise :class:`_BadRequestError` if unusable."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequestError("request body must be a JSON object")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list):
        raise _BadRequestError("'messages' must be a list")
    messages: list[dict[str, str]] = []
    for item in raw_messages:
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            raise _BadRequestError(f"each message needs a string 'role', got {item!r}")
        messages.append({"role": item["role"], "content": _flatten_content(item.get("content"))})
    model = body.get("model")
    return StubRequest(
        model=model if isinstance(model, str) and model else default_model,
        messages=tuple(messages),
        stream=body.get("stream") is True,
        body=body,
    )


def _word_count(text: str) -> int:
    return len(text.split())


def _failure_message(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return f"Stub failure {status}"
    return f"Stub failure {status} {phrase}"


def _error_body(status: int, message: str) -> dict[str, object]:
    error_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "api_error")
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


class _Server(ThreadingHTTPServer):
    """The HTTP server, pointing back at its :class:`StubLLMServer` and tracking connections."""

    daemon_threads = True

    def __init__(self, owner: StubLLMServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((_HOST, 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down open (keep-alive) connections so their handler threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients going away (timeouts, stop) are expected in tests."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""

    # -- routing ---------------------------------------------------------------------

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:
        if self._path() == _MODELS_PATH:
            owner = self.server.owner
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": owner.model, "object": "model", "created": 0, "owned_by": "stub"}
                    ],
                },
            )
        else:
            self._not_found()

    def do_POST(self) -> None:
        raw = self._read_body()
        if self._path() != _CHAT_PATH:
            self._not_found()
            return
        owner = self.server.owner
        try:
            request = _parse_request(raw, owner.model)
        except _BadRequestError as exc:
            self._send_error(400, str(exc))
            return
        status, text = owner._answer(request)
        owner._wait_delay()
        if status != 200:
            self._send_error(status, text)
        elif request.stream:
            self._send_stream(request, text)
        else:
            self._send_completion(request, text)

    def do_PUT(self) -> None:
        self._read_body()
        self._not_found()

    def do_PATCH(self) -> None:
        self._read_body()
        self._not_found()

    def do_DELETE(self) -> None:
        self._read_body()
        self._not_found()

    # -- plumbing --------------------------------------------------------------------

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _not_found(self) -> None:
        self._send_error(404, f"Unknown request URL: {self.command} {self.path}")

    def _send_error(self, status: int, message: str) -> None:
        self._send_json(status, _error_body(status, message))

    def _send_json(self, status: int, payload: Mapping[str, object]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_completion(self, request: StubRequest, text: str) -> None:
        self._send_json(
            200,
            {
                "id": self.server.owner._next_id(),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(request, text),
            },
        )

    def _send_stream(self, request: StubRequest, text: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in _stream_events(request, text, self.server.owner._next_id()):
            data = f"data: {event}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _usage(request: StubRequest, text: str) -> dict[str, int]:
    prompt = sum(_word_count(m["content"]) for m in request.messages)
    completion = _word_count(text)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _stream_events(request: StubRequest, text: str, completion_id: str) -> Iterator[str]:
    """The ``data:`` payloads of a streamed reply, ``[DONE]`` included."""
    created = int(time.time())

    def chunk(delta: dict[str, str], finish_reason: str | None = None) -> str:
        return json.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    for piece in _PIECE.findall(text):
        yield chunk({"content": piece})
    yield chunk({}, "stop")
    options = request.body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        yield json.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "choices": [],
                "usage": _usage(request, text),
            }
        )
    yield "[DONE]"


class StubLLMServer:
    """An OpenAI-compatible chat-completions server on ``127.0.0.1`` for tests.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`), point a client
    at :attr:`base_url`, and inspect :attr:`requests` afterwards.
    """

    def __init__(self, responder: Responder | None = None, *, model: str = "stub-model") -> None:
        self._responder = responder
        self._model = model
        self._lock = threading.Lock()
        self._requests: list[StubRequest] = []
        self._scripted: deque[str] = deque()
        self._failures: deque[int] = deque()
        self._delay = 0.0
        self._counter = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> StubLLMServer:
        """Bind a free port and serve in a daemon thread; a no-op when already running."""
        with self._lock:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = _Server(self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"StubLLMServer:{server.server_address[1]}",
                daemon=True,
            )
            self._server = server
            self._thread = thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end open connections, join the thread and close the socket."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = None
            self._thread = None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> StubLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- inspection ------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model listed by ``GET /v1/models`` and used when a request names none."""
        return self._model

    @property
    def port(self) -> int:
        """The bound port; raises :class:`RuntimeError` when the server is not running."""
        server = self._server
        if server is None:
            raise RuntimeError("StubLLMServer is not running; call start() first")
        return int(server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` — what to pass to the client as ``base_url``."""
        return f"http://{_HOST}:{self.port}/v1"

    @property
    def requests(self) -> list[StubRequest]:
        """Every chat request received (failed ones included), in order; a copy."""
        with self._lock:
            return list(self._requests)

    # -- behaviour -------------------------------------------------------------------

    def script(self, *replies: str) -> None:
        """Queue replies, consumed one per chat request before the responder is asked."""
        with self._lock:
            self._scripted.extend(replies)

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` chat requests with HTTP ``status`` and an error body."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if times < 0:
            raise ValueError(f"times must not be negative, got {times}")
        with self._lock:
            self._failures.extend([status] * times)

    def delay(self, seconds: float) -> None:
        """Wait ``seconds`` before every chat response (``0`` turns it off)."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        with self._lock:
            self._delay = float(seconds)

    def clear(self) -> None:
        """Forget pending failures and scripted replies and stop delaying: the endpoint
        recovers (the requests received so far are kept)."""
        with self._lock:
            self._failures.clear()
            self._scripted.clear()
            self._delay = 0.0

    # -- used by the handler ---------------------------------------------------------

    def _answer(self, request: StubRequest) -> tuple[int, str]:
        """Record ``request`` and decide the reply: ``(200, text)`` or ``(status, message)``."""
        with self._lock:
            self._requests.append(request)
            if self._failures:
                status = self._failures.popleft()
                return status, _failure_message(status)
            if self._scripted:
                return 200, self._scripted.popleft()
            responder = self._responder
        if responder is None:
            return 200, "stub reply to: " + request.last_user
        try:
            return 200, responder(request)
        except Exception as exc:  # the test's responder is broken; tell the client
            return 500, f"Stub responder raised {exc!r}"

    def _wait_delay(self) -> None:
        with self._lock:
            seconds = self._delay
        if seconds > 0:
            self._stopping.wait(seconds)

    def _next_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"chatcmpl-stub-{self._counter}"
