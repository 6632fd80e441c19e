"""A fake OpenAI-compatible chat server on 127.0.0.1, for the `openai` captioner's tests and benchmark.

It answers `GET /v1/models` and `POST /v1/chat/completions` the way vLLM, Ollama and LM Studio do,
and can be told to misbehave, request by request: a status (429 with Retry-After, 500, 401), a
sleep past the client's timeout, a body that is not JSON, a connection closed mid-answer. Every
request it got is kept (`requests`) so a test can check what the captioner sent.

    with FakeOpenAIServer(models=["tiny-vl"]) as server:
        server.script(["429", "ok"])            # the first chat request gets a 429, the next an answer
        ...  OpenAICaptioner(base_url=server.url, ...)
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAIServer", "describe_image"]


def describe_image(data_url: str) -> str:
    """What the fake model "sees": the image's size and main colour, decoded from the data URL
    (so a test knows the image arrived whole and resized)."""
    from PIL import Image

    header, _, payload = data_url.partition(",")
    if header != "data:image/jpeg;base64":
        return f"unexpected image header {header!r}"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
        pixel = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
        rgb = pixel if isinstance(pixel, tuple) else (0, 0, 0)
        colour = ("red", "green", "blue")[max(range(3), key=lambda i: rgb[i])]
        return f"a {colour} picture, {image.width}x{image.height}"


class FakeOpenAIServer:
    """A threaded HTTP server in a background thread (see the module docstring)."""

    def __init__(self, models: Iterable[str] = ("tiny-vl",), latency: float = 0.0,
                 answer: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.models = list(models)
        self.latency = latency
        self.answer = answer or self._default_answer
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._script: list[str | bytes] = []
        self._lock = threading.Lock()
        self.active = self.peak_active = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in owner.models]})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with owner._lock:
                    owner.requests.append(body)
                    owner.headers.append(dict(self.headers))
                    step = owner._script.pop(0) if owner._script else "ok"
                    owner.active += 1
                    owner.peak_active = max(owner.peak_active, owner.active)
                try:
                    self._act(step, body)
                finally:
                    with owner._lock:
                        owner.active -= 1

            def _act(self, step: str | bytes, body: dict[str, Any]) -> None:
                if owner.latency:
                    time.sleep(owner.latency)
                if isinstance(step, bytes):  # an answer's raw body, as a hostile server would send it
                    self._raw(200, step)
                elif step == "ok":
                    content = owner.answer(body)
                    self._json(200, {"id": "x", "object": "chat.completion", "model": body.get("model"),
                                     "choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": content}}]})
                elif step.isdigit():
                    extra = {"Retry-After": "0"} if step == "429" else {}
                    self._json(int(step), {"error": {"message": f"scripted {step}", "type": "test"}}, extra)
                elif step.startswith("sleep"):
                    time.sleep(float(step[5:] or 2))
                    self._json(200, {"choices": [{"message": {"content": "too late"}}]})
                elif step == "not-json":
                    self._raw(200, b"<html>502 Bad Gateway</html>")
                elif step == "wrong-shape":
                    self._json(200, {"result": "a caption, but not where the API puts it"})
                elif step == "close-mid-answer":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "500")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [{"message": {"content": "half a')
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif step == "empty":
                    self._json(200, {"choices": [{"message": {"content": ""}, "finish_reason": "content_filter"}]})
                else:
                    raise ValueError(f"unknown scripted step {step!r}")

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._raw(status, json.dumps(payload).encode(), headers)

            def _raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (a timeout test) is not the server's error

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @staticmethod
    def _default_answer(body: dict[str, Any]) -> str:
        parts = body["messages"][-1]["content"]
        url = next(p["image_url"]["url"] for p in parts if p.get("type") == "image_url")
        return f"Sure! Here is a caption for the image:\n\n{describe_image(url)}."

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, steps: Iterable[str | bytes]) -> None:
        """What the next chat requests get, in order ("ok", "429", "500", "sleep3", "not-json",
        "wrong-shape", "close-mid-answer", "empty", or bytes: a raw 200 body); after the script, "ok"."""
        with self._lock:
            self._script = list(steps)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
