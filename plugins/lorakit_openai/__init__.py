"""The `openai` captioner: any OpenAI-compatible `/v1/chat/completions` server that takes images
(Ollama, LM Studio, llama.cpp's server, vLLM, OpenAI itself).

    lorakit caption data/ --captioner openai --model qwen2.5vl:7b            # OPENAI_BASE_URL's server
    lorakit caption data/ --captioner openai -O openai.base_url=http://gpu-box:8000/v1 -O concurrency=16
    lorakit caption data/ --captioner openai -O form=tags --resume           # continue after a stop

The server and key come from `OPENAI_BASE_URL` / `OPENAI_API_KEY` as the openai client reads them,
overridden by `-O openai.base_url=...` / `-O openai.api_key=...`. `--model` names the served model;
without it the server's one model is used (a server serving several asks which). Each image is
resized to `max_side` (1024 px) and sent as a base64 JPEG data URL; requests run `concurrency` at a
time (4), with `retries` (4) and exponential backoff on 429, 5xx, timeouts and dropped connections
(a server's `Retry-After` is honoured); a refusal (4xx) or an unreachable server is one line naming
the option to change. Answers are cleaned of chat wrappers ("Sure! Here is a caption: ...").

Only the standard library: nothing to install.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lora_core.errors import PluginError
from lora_core.hookspecs import hookimpl
from lora_core.toolkit.answers import clean_answer
from lora_core.toolkit.caption_context import CaptionContext, default_prompt

REQUIRES: tuple[str, ...] = ()  # the standard library, and Pillow from the core install
INSTALL = ""

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Answers worth another try: the server is busy, restarting or overloaded.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_ANSWER_BYTES = 4 << 20  # a caption is a few hundred bytes; a bigger answer is not one


class _Retry(Exception):
    """One failed try that another may fix (the reason, and the server's Retry-After if any)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


class OpenAICaptioner:
    takes_prompt = True

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto",
                 base_url: str | None = None, api_key: str | None = None, form: str | None = None,
                 max_side: int = 1024, jpeg_quality: int = 90, concurrency: int = 4, timeout: float = 120.0,
                 retries: int = 4, backoff: float = 1.0, max_tokens: int = 300, temperature: float = 0.0,
                 context: CaptionContext | None = None) -> None:
        del device, dtype  # the server decides
        self.base_url = str(base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise PluginError(f"captioner openai: base_url {self.base_url!r} is not an http(s) URL "
                              "(set OPENAI_BASE_URL or -O openai.base_url=http://host:port/v1)")
        self.api_key = str(api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", ""))
        for name, value, low in (("max_side", max_side, 64), ("concurrency", concurrency, 1),
                                 ("max_tokens", max_tokens, 1), ("retries", retries, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise PluginError(f"captioner openai: -O {name}={value!r}: expected a whole number >= {low}")
        for name, number in (("timeout", timeout), ("backoff", backoff), ("temperature", temperature)):
            if not isinstance(number, (int, float)) or isinstance(number, bool) or not 0 <= number < 1e6:
                raise PluginError(f"captioner openai: -O {name}={number!r}: expected a number >= 0")
        if not isinstance(jpeg_quality, int) or not 1 <= jpeg_quality <= 95:
            raise PluginError(f"captioner openai: -O jpeg_quality={jpeg_quality!r}: expected 1 to 95")
        self.max_side, self.jpeg_quality, self.concurrency = max_side, jpeg_quality, concurrency
        self.timeout, self.retries, self.backoff = float(timeout), retries, float(backoff)
        self.max_tokens, self.temperature = max_tokens, float(temperature)
        self.context = context or CaptionContext()
        self.default_prompt = default_prompt(self.context, form)
        self.model = model or self._only_served_model()
        self.batch_size_hint = concurrency  # the pipeline sends at least this many images at once
        self._warned = threading.Lock()

    # -- the server ---------------------------------------------------------------------------

    def _request(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """One HTTP request and its JSON answer; `_Retry` for what another try may fix,
        PluginError for what it will not."""
        url = f"{self.base_url}/{path}"
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "lorakit-openai-captioner"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout or None) as response:
                raw = response.read(MAX_ANSWER_BYTES + 1)
                promised = response.headers.get("Content-Length", "")
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code in RETRY_STATUSES:
                raise _Retry(f"{exc.code} {exc.reason}{detail}", _retry_after(exc.headers.get("Retry-After"))) from None
            hint = {401: ": set OPENAI_API_KEY or -O openai.api_key=...", 403: ": the key may not use this model",
                    404: f": is {self.base_url} the server's /v1 URL, and `{body and body.get('model')}` a model it "
                         "serves? (-O openai.base_url=..., --model NAME)"}.get(exc.code, "")
            raise PluginError(f"captioner openai: {url} answered {exc.code} {exc.reason}{detail}{hint}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise _Retry(f"no answer within {self.timeout:g} s (-O timeout=...)") from None
            if isinstance(reason, (ConnectionResetError, ConnectionAbortedError)):
                raise _Retry(f"the connection dropped ({reason})") from None
            raise PluginError(f"captioner openai: cannot reach {self.base_url} ({reason}): start the server, or "
                              "set OPENAI_BASE_URL or -O openai.base_url=http://host:port/v1") from None
        except TimeoutError:
            raise _Retry(f"no answer within {self.timeout:g} s (-O timeout=...)") from None
        except (ConnectionError, OSError, ValueError, http.client.HTTPException) as exc:  # closed mid-answer
            raise _Retry(f"the connection dropped mid-answer ({type(exc).__name__})") from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise PluginError(f"captioner openai: {url} answered more than {MAX_ANSWER_BYTES >> 20} MB: not a caption")
        if promised.isdigit() and len(raw) < int(promised):  # read() of a size returns short, silently
            raise _Retry(f"the connection dropped mid-answer ({len(raw)} of {promised} bytes)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Retry(f"the answer is not UTF-8 ({raw[:60]!r})") from None
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise _Retry(f"the answer is not JSON ({raw[:60]!r})") from None

    def _with_retries(self, what: str, attempt: Callable[[], Any]) -> Any:
        for tried in range(self.retries + 1):
            try:
                return attempt()
            except _Retry as exc:
                if tried == self.retries:
                    raise PluginError(f"captioner openai: {what}: gave up after {tried + 1} tries; the last: {exc} "
                                      "(-O retries=N; --resume continues where this stopped)") from None
                wait = exc.wait if exc.wait is not None else self.backoff * 2 ** tried * (0.5 + random.random())
                time.sleep(min(wait, 60.0))
        raise AssertionError("unreachable")

    def _only_served_model(self) -> str:
        answer = self._with_retries("listing the served models", lambda: self._request("models"))
        listed = answer.get("data") if isinstance(answer, dict) else None
        names = sorted({str(m.get("id")) for m in listed if isinstance(m, dict) and m.get("id")}) \
            if isinstance(listed, list) else []
        if len(names) == 1:
            return names[0]
        if not names:
            raise PluginError(f"captioner openai: {self.base_url}/models lists no model: name the served model with "
                              "--model NAME")
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise PluginError(f"captioner openai: {self.base_url} serves {len(names)} models ({shown}): "
                          "name one with --model NAME")

    # -- captions -----------------------------------------------------------------------------

    def encode(self, item: Any) -> str:
        """The image as a JPEG data URL, its longest side at most `max_side` (alpha on white)."""
        from PIL import Image

        image = item.load()
        if max(image.size) > self.max_side:
            image.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=self.jpeg_quality)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    def caption_one(self, item: Any, prompt: str | None = None) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": prompt or self.default_prompt},
                {"type": "image_url", "image_url": {"url": self.encode(item)}},
            ]}],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

        def attempt() -> str:
            answer = self._request("chat/completions", body)
            try:
                choice = answer["choices"][0]
                content = choice["message"]["content"]
            except (KeyError, IndexError, TypeError):
                raise _Retry(f"the answer is not a chat completion ({json.dumps(answer)[:80]})") from None
            if isinstance(content, list):  # some servers answer in content parts
                content = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
            if content is not None and not isinstance(content, str):
                raise _Retry(f"the answer's content is not text ({type(content).__name__})")
            return clean_answer(content or "")

        caption = self._with_retries(f"captioning {item.name}", attempt)
        if not caption:
            with self._warned:
                print(f"lorakit: warning: captioner openai: the model gave no caption for {item.name}: left "
                      "uncaptioned (rerun with --resume to try again)", file=sys.stderr)
        return str(caption)

    def caption(self, items: Sequence[Any], prompt: str | None = None) -> list[str]:
        if len(items) <= 1 or self.concurrency == 1:
            return [self.caption_one(item, prompt) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            futures = [pool.submit(self.caption_one, item, prompt) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()  # stop at the first error: what is done is written, --resume goes on
                raise


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, min(float(value), 60.0)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The server's own words for an error answer, if it gave any (OpenAI's `{"error": {...}}`)."""
    try:
        payload = json.loads(exc.read(64 << 10) or b"{}")
    except (ValueError, OSError, RecursionError):
        return ""
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    text = " ".join(str(message or "").split())[:200]
    return f" ({text})" if text else ""


@hookimpl
def register_captioners(register: Callable[..., None]) -> None:
    register("openai", OpenAICaptioner, takes_prompt=True,
             default_model="the server's only model (OPENAI_BASE_URL; --model NAME)",
             description="any OpenAI-compatible chat server with image input (Ollama, LM Studio, llama.cpp, vLLM)")
