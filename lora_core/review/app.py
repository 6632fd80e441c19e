"""The Starlette application of `lorakit review`: JSON endpoints over a `DatasetSession`, images by
record index, the page, and the rules a local server needs (as Jupyter has them):

- every request carries the session's random token: a cookie set by opening `/?token=...` once (the
  URL the command prints and opens), or an `X-Lorakit-Token` header (scripts);
- the `Host` header must name this server (127.0.0.1, localhost or the `--host` given, with its port):
  a DNS-rebinding page cannot reach it under a name of its own;
- state changes are POSTs with a JSON body, and a POST whose `Origin` is another site's is refused
  (a cross-site form cannot send JSON without a preflight this server never answers);
- files are named by record index, never by a path from the request, and read only inside the
  dataset; the only files written are the dataset's caption files (and the journal in its cache),
  and a dropped image moves only inside its own folder (into `.lorakit_dropped/`).
"""

from __future__ import annotations

import difflib
import hmac
import json
import re
import threading
from collections.abc import Iterable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from lora_core.errors import LorakitError
from lora_core.review.journal import Journal, JournalConflict
from lora_core.review.thumbnails import ImageStore
from lora_core.session import DatasetSession
from lora_core.violations import Violation

__all__ = ["COOKIE", "ReviewState", "create_app"]

COOKIE = "lorakit_review_token"
STATIC = Path(__file__).parent / "static"
MAX_BODY = 8 * 1024 * 1024


class ReviewState:
    """The session, its journal and images, behind one lock (requests run in a thread pool)."""

    def __init__(self, session: DatasetSession, captioning: Any = None) -> None:
        """`captioning`: the `lorakit caption` options (a CaptionOptions naming one captioner) the
        page's *Caption* button uses, or None (no button)."""
        self.session = session
        self.captioning = captioning
        self._captioner: Any = None
        self.lock = threading.RLock()
        self.journal = Journal.load(session.dataset.root)
        self.images = ImageStore(session.dataset.root)
        self._settings: tuple[int, str] = (-1, "")

    def caption(self, index: int) -> str:
        """A fresh caption for record `index` from the configured captioner (loaded on first use and
        kept), shaped by the config's fixes as `lorakit caption` shapes it."""
        from lora_core.captioning import context_from_config, load_captioners, postprocess, run_captioner
        from lora_core.protocols import ImageItem

        if self.captioning is None:
            raise LorakitError("no captioner: start `lorakit review` with --captioner NAME")
        record = self.session.dataset.records[index]
        real = self.images.inside(record.image_path)
        if real is None:
            raise LorakitError(f"{record.image}: no image inside the dataset to caption")
        if self._captioner is None:
            context = context_from_config(self.session.config, [r.caption for r in self.session.dataset.records
                                                                if r.caption][:200])
            self._captioner = load_captioners(self.captioning.captioners, self.captioning, self.session.registry,
                                              context)[0][1]
        item = ImageItem(str(record.image), real, Path(self.images.root))
        [[draft]] = run_captioner(self._captioner, [item], [self.captioning.prompt], 1, 0)
        human = bool(getattr(self._captioner, "human_written", False))
        return postprocess([draft], self.session.config, self.session.registry, unsafe=not human)[0]

    def settings(self) -> str:
        """What `lorakit lint --show-settings` says of the dataset (model, form, trigger, style and
        where each comes from), read again after each reload or save."""
        if self._settings[0] != self.session.generation:
            from lora_core.cli.lint import settings_text

            try:
                text = settings_text([self.session.target], self.session.options, self.session.registry)
            except LorakitError as exc:
                text = str(exc)
            self._settings = (self.session.generation, text)
        return self._settings[1]

    # -- JSON shapes -------------------------------------------------------------------------

    def finding(self, number: int, violation: Violation) -> dict[str, Any]:
        fix = violation.fix
        return {
            "id": finding_key(violation), "code": violation.code, "name": violation.name,
            "severity": violation.severity.value,
            "message": violation.message, "image": violation.image,
            "record": violation.record.index if violation.record is not None else None,
            "span": list(violation.span) if violation.span is not None else None,
            "fix": None if fix is None else {"applicability": fix.applicability.value,
                                             "description": fix.description, "edits": bool(fix.edits)},
        }

    def detail(self, index: int) -> dict[str, Any]:
        """What the detail view shows beside the caption: its CLIP tokens against the target
        model's budget, the image's size against the training resolution, the picture an LK605
        finding says it duplicates."""
        from lora_core.toolkit.models import model_named

        record = self.session.dataset.records[index]
        config = self.session.config
        model = model_named(str(config.section("dataset").get("model") or ""))
        try:
            from lora_core.toolkit.clip_tokens import load_tokenizer

            tokens: int | None = load_tokenizer().count(record.caption or "")
        except Exception:  # no tokenizer available: the panel says so
            tokens = None
        size = None
        real = self.images.inside(record.image_path)
        if real is not None:
            try:
                from PIL import Image

                with Image.open(real) as image:
                    size = list(image.size)
            except Exception:  # an unreadable image: LK601 says why
                size = None
        original = next((v.data["duplicate_of"] for v in self.session.violations
                         if v.code == "LK605" and v.record is record and v.data.get("duplicate_of")), None)
        records = self.session.dataset.records  # searched only for a duplicate: this runs per keystroke
        duplicate = next((i for i, r in enumerate(records) if r.image == original), None) if original else None
        train = config.section("train")
        return {"i": index, "tokens": tokens, "budget": model.budget if model is not None else 75,
                "model": model.name if model is not None else "unknown (CLIP's 75 assumed; [dataset] model pins it)",
                "size": size, "resolution": train.get("resolution") if "train.resolution" in config.present else None,
                "duplicate_of": duplicate}

    def record(self, index: int, findings: list[dict[str, Any]]) -> dict[str, Any]:
        record = self.session.dataset.records[index]
        return {"i": index, "image": record.image, "caption": record.caption,
                "concept": record.concept, "repeats": record.repeats,
                "unsaved": record.caption != record.original_caption,
                "findings": findings}

    def _by_record(self) -> tuple[dict[int, list[dict[str, Any]]], list[dict[str, Any]]]:
        per: dict[int, list[dict[str, Any]]] = {}
        loose: list[dict[str, Any]] = []
        for number, violation in enumerate(self.session.violations):
            shaped = self.finding(number, violation)
            index = shaped["record"]
            if index is None:
                loose.append(shaped)
            else:
                per.setdefault(index, []).append(shaped)
        return per, loose

    def state(self) -> dict[str, Any]:
        session = self.session
        per, loose = self._by_record()
        records = [self.record(i, per.get(i, [])) for i in range(len(session.dataset.records))]
        rules = {rule.code: {"name": rule.name, "summary": rule.summary, "severity": rule.severity.value,
                             "doc": (type(rule).__doc__ or "").strip()} for rule in session.rules}
        return {"dataset": {"path": str(session.dataset.path), "format": session.dataset.format,
                            "root": str(session.dataset.root), "records": len(records),
                            "generation": session.generation},
                "records": records, "dataset_findings": loose, "rules": rules, "settings": self.settings(),
                "captioner": self.captioning.captioners[0] if self.captioning is not None else None,
                **self.status()}

    def status(self) -> dict[str, Any]:
        return {"unsaved": self.session.unsaved(),
                "changed_on_disk": [str(p) for p in self.session.changed_on_disk()],
                "journal": self.journal.summary()}

    def changes_since(self, before: dict[int, Any]) -> dict[str, Any]:
        """What an edit changed: the records whose caption or findings differ from `before`
        (`signatures()` taken before it), the dataset-level findings, the status. Only those
        records are shaped and sent: a keystroke on a 10,000-caption set sends a few."""
        after = self.signatures()
        changed = {i for i, signature in after.items() if before.get(i) != signature}
        per: dict[int, list[dict[str, Any]]] = {}
        loose: list[dict[str, Any]] = []
        for number, violation in enumerate(self.session.violations):
            if violation.record is None:
                loose.append(self.finding(number, violation))
            elif violation.record.index in changed:
                per.setdefault(violation.record.index, []).append(self.finding(number, violation))
        records = [self.record(i, per.get(i, [])) for i in sorted(changed)]
        return {"records": records, "dataset_findings": loose, **self.status()}

    def signatures(self) -> dict[int, Any]:
        """Per record, what the page shows of it (caption, unsaved, findings), cheaply comparable."""
        per: dict[int, list[Any]] = {}
        for violation in self.session.violations:
            if violation.record is not None:
                per.setdefault(violation.record.index, []).append((violation.code, violation.message, violation.span))
        return {i: (r.caption, r.caption != r.original_caption, tuple(per.get(i, ())))
                for i, r in enumerate(self.session.dataset.records)}


def finding_key(violation: Violation) -> str:
    """A finding's id, stable across re-lints while the finding stays (its rule, where, what it
    says): the page may hold it while other captions change."""
    import hashlib

    where = f"{violation.span[0]}-{violation.span[1]}" if violation.span is not None else "-"
    said = hashlib.sha1(violation.message.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{violation.code}:{where}:{said}"


def diff_text(before: str, after: str) -> str:
    return "".join(difflib.unified_diff([before + "\n"], [after + "\n"], "caption", "fixed", n=0, lineterm="\n"))


def file_diff(name: str, before: bytes, after: bytes) -> str:
    """A unified diff of a whole file (a metadata file losing a row), one context line."""
    old, new = (data.decode("utf-8", "replace").splitlines(keepends=True) for data in (before, after))
    return "".join(difflib.unified_diff(old, new, name, name, n=1))


# -- the application -------------------------------------------------------------------------


def create_app(state: ReviewState, token: str, allowed_hosts: Iterable[str]) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.responses import JSONResponse as StarletteJSON
    from starlette.routing import Route

    session = state.session

    class JSONResponse(StarletteJSON):
        """ASCII JSON: a caption's undecodable bytes (lone surrogates) travel as `\\udcXX` escapes and
        come back from the page the same way, so an edit writes them back exactly as they were."""

        def render(self, content: Any) -> bytes:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")

    def error(message: str, status: int = 409) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def read_index(request: Request) -> int | None:
        try:
            index = int(request.path_params["index"])
        except (KeyError, ValueError):
            return None
        return index if 0 <= index < len(session.dataset.records) else None

    async def body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise LorakitError("request too large")
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, RecursionError):
            raise LorakitError("the request body is not JSON") from None
        if not isinstance(data, dict):
            raise LorakitError("the request body is not a JSON object")
        return data

    def record_index(data: dict[str, Any]) -> int:
        index = data.get("i")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(session.dataset.records):
            raise LorakitError(f"no record {index!r}")
        return index

    def text(data: dict[str, Any], key: str, limit: int = 200_000) -> str:
        value = data.get(key)
        if not isinstance(value, str) or len(value) > limit:
            raise LorakitError(f"`{key}` must be text of at most {limit} characters")
        return value

    def indexes(data: dict[str, Any]) -> list[int] | None:
        chosen = data.get("indexes")
        if chosen is None:
            return None
        if not isinstance(chosen, list) or not all(isinstance(i, int) and 0 <= i < len(session.dataset.records)
                                                   for i in chosen):
            raise LorakitError("`indexes` must be a list of record indexes")
        return chosen

    def guarded(handler: Any) -> Any:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except (LorakitError, JournalConflict) as exc:
                return error(str(exc))
        return run

    # -- pages and files -------------------------------------------------------------------

    async def index_page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("review.js", "review.css"):
            return PlainTextResponse("not found", status_code=404)
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return FileResponse(STATIC / name, media_type=f"{kind}; charset=utf-8", headers={"Cache-Control": "no-store"})

    async def thumbnail(request: Request) -> Response:
        index = read_index(request)
        if index is None:
            return PlainTextResponse("no such record", status_code=404)
        data = await _in_thread(state.images.thumbnail, session.dataset.records[index].image_path)
        if data is None:
            return PlainTextResponse("no preview", status_code=404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})

    async def full_image(request: Request) -> Response:
        index = read_index(request)
        found = None if index is None else await _in_thread(state.images.full,
                                                              session.dataset.records[index].image_path)
        if found is None:
            return PlainTextResponse("no image", status_code=404)
        data, kind = found
        return Response(data, media_type=kind, headers={"Cache-Control": "private, max-age=60"})

    # -- the API ---------------------------------------------------------------------------

    async def api_state(request: Request) -> Response:
        with state.lock:
            return JSONResponse(state.state())

    async def api_edit(request: Request) -> Response:
        data = await body(request)
        index, caption = record_index(data), text(data, "caption")
        with state.lock:
            before = state.signatures()
            session.edit(index, caption)
            return JSONResponse({**state.changes_since(before), "detail": state.detail(index)})

    async def api_caption(request: Request) -> Response:
        data = await body(request)
        index = record_index(data)
        caption = await _in_thread(state.caption, index)  # a model's time: the page stays responsive
        with state.lock:
            before = state.signatures()
            session.edit(index, caption)
            return JSONResponse({**state.changes_since(before), "caption": caption, "detail": state.detail(index)})

    async def api_stats(request: Request) -> Response:
        """`lorakit stats` of the dataset as it is in memory (unsaved edits included)."""
        from lora_core.stats import compute

        with state.lock:
            return JSONResponse(compute(session.dataset, session.config, top=25))

    async def api_detail(request: Request) -> Response:
        index = read_index(request)
        if index is None:
            return error("no such record", 404)
        with state.lock:
            return JSONResponse(state.detail(index))

    async def api_fix_preview(request: Request) -> Response:
        data = await body(request)
        index = record_index(data)
        key = data.get("id")
        with state.lock:
            violation = next((v for v in session.violations if v.record is not None and v.record.index == index
                              and finding_key(v) == key), None)
            if violation is None:
                raise LorakitError("that finding is gone (the caption changed): look again")
            if violation.fix is None or not violation.fix.edits:
                raise LorakitError("that finding has no fix for this caption")
            before = session.dataset.records[index].caption or ""
            after = session.fixed_caption(index, violation)
            return JSONResponse({"i": index, "before": before, "after": after, "diff": diff_text(before, after),
                                 "applicability": violation.fix.applicability.value})

    async def api_fix_all(request: Request) -> Response:
        data = await body(request)
        unsafe, apply, chosen = bool(data.get("unsafe")), bool(data.get("apply")), indexes(data)
        with state.lock:
            before = state.signatures()
            kept = [r.caption for r in session.dataset.records]
            changes = session.fix_all(unsafe=unsafe, indexes=chosen)
            shaped = [{"i": i, "before": old, "after": new, "diff": diff_text(old, new)}
                      for i, (old, new) in sorted(changes.items())]
            if not apply:  # a preview: every caption back as it was
                for record, caption in zip(session.dataset.records, kept):
                    record.caption = caption
                session.relint()
            return JSONResponse({"changes": shaped, "applied": apply, **state.changes_since(before)})

    async def api_replace(request: Request) -> Response:
        data = await body(request)
        find, replacement = text(data, "find", 10_000), text(data, "replace", 10_000)
        apply, chosen = bool(data.get("apply")), indexes(data)
        if not find:
            raise LorakitError("`find` is empty")
        try:
            pattern = re.compile(find if data.get("regex") else re.escape(find),
                                 0 if data.get("case") else re.IGNORECASE)
        except re.error as exc:
            raise LorakitError(f"`find` is not a regular expression: {exc}") from None
        with state.lock:
            before = state.signatures()
            targets = chosen if chosen is not None else range(len(session.dataset.records))
            shaped = []
            for index in targets:
                record = session.dataset.records[index]
                if record.caption is None:
                    continue
                try:
                    new = pattern.sub(replacement.replace("\\", "\\\\") if not data.get("regex") else replacement,
                                      record.caption)
                except (re.error, IndexError) as exc:
                    raise LorakitError(f"`replace`: {exc}") from None
                if new != record.caption:
                    shaped.append({"i": index, "before": record.caption, "after": new,
                                   "diff": diff_text(record.caption, new)})
                    if apply:
                        record.caption = new
            if apply and shaped:
                session.relint()
            return JSONResponse({"changes": shaped, "applied": apply, **state.changes_since(before)})

    async def api_revert(request: Request) -> Response:
        data = await body(request)
        with state.lock:
            before = state.signatures()
            session.revert(record_index(data) if data.get("i") is not None else None)
            return JSONResponse(state.changes_since(before))

    async def api_save(request: Request) -> Response:
        await body(request)
        with state.lock:
            changes = session.pending()
            label = f"save {len(changes)} file(s)"
            written = session.save()
            state.journal.record(label, {p: changes[p] for p in written})
            return JSONResponse({"written": [str(p) for p in written], **state.state()})

    def journal_step(move: Any) -> Any:
        """An undo or a redo (`move`: the journal's method): refused over unsaved edits."""
        async def step(request: Request) -> Response:
            await body(request)
            with state.lock:
                _refuse_unsaved(session)
                done = move()
                session.reload()
                return JSONResponse({"written": [str(p) for p in done], **state.state()})
        return step

    async def api_pin(request: Request) -> Response:
        """The inferred settings (trigger, style, model, wording) as the lorakit.toml `lorakit init`
        would write: a preview, or written with `apply` (never over an existing file)."""
        import os

        from lora_core.atomic import atomic_write_text
        from lora_core.config import CONFIG_FILENAME, resolve_config, tomllib
        from lora_core.starter import propose, render

        data = await body(request)
        with state.lock:
            target = session.dataset.root / CONFIG_FILENAME
            if os.path.lexists(target):
                raise LorakitError(f"{target} exists: edit it (`lorakit init --stdout` prints a proposal to compare)")
            text = render(propose(session.dataset, lexicon=session.registry.lexicon),
                          session.dataset.root.resolve().name)
            resolve_config(tomllib.loads(text), session.registry.config_sections)
            if not data.get("apply"):
                return JSONResponse({"path": str(target), "text": text, "applied": False})
            try:
                atomic_write_text(target, text)
            except OSError as exc:
                raise LorakitError(f"{target}: cannot write it ({exc.strerror or exc})") from None
            session.reload()
            return JSONResponse({"path": str(target), "text": text, "applied": True, **state.state()})

    async def api_drop(request: Request) -> Response:
        """Take record `i` out of the dataset (DatasetSession.drop): a preview of what moves and
        what a metadata file loses, or done with `apply` (and journaled: Undo puts it back). The
        page sends the record's `image` too: an index from a page that missed a reload is refused."""
        data = await body(request)
        index = record_index(data)
        with state.lock:
            record = session.dataset.records[index]
            if data.get("image") != record.image:
                raise LorakitError("the dataset changed since the page read it: reload and look again")
            root = session.dataset.root
            plan = session.drop(index) if data.get("apply") else session.drop_plan(index)
            shown = {"i": index, "image": record.image,
                     "moves": [[_relative(a, root), _relative(b, root)] for a, b in plan.moves],
                     "rewrites": [{"path": _relative(path, root), "diff": file_diff(_relative(path, root), old, new)}
                                  for path, (old, new) in plan.changes.items()]}
            if not data.get("apply"):
                return JSONResponse({**shown, "applied": False})
            state.journal.record(f"drop {record.image}", plan.changes, plan.moves)
            return JSONResponse({**shown, "applied": True, **state.state()})

    async def api_reload(request: Request) -> Response:
        await body(request)
        with state.lock:
            session.reload()
            return JSONResponse(state.state())

    routes = [
        Route("/", index_page, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/thumb/{index}", thumbnail, methods=["GET"]),
        Route("/image/{index}", full_image, methods=["GET"]),
        Route("/api/state", guarded(api_state), methods=["GET"]),
        Route("/api/detail/{index}", guarded(api_detail), methods=["GET"]),
        Route("/api/stats", guarded(api_stats), methods=["GET"]),
        *(Route(f"/api/{name}", guarded(handler), methods=["POST"]) for name, handler in (
            ("edit", api_edit), ("fix-preview", api_fix_preview), ("fix-all", api_fix_all),
            ("replace", api_replace), ("revert", api_revert), ("save", api_save),
            ("undo", journal_step(state.journal.undo_last)), ("redo", journal_step(state.journal.redo_last)),
            ("reload", api_reload), ("pin", api_pin), ("caption", api_caption), ("drop", api_drop))),
    ]
    app = Starlette(routes=routes)
    return Guard(app, token, set(allowed_hosts), RedirectResponse)


def _relative(path: Path, root: Path) -> str:
    import os

    return os.path.relpath(path, root).replace(os.sep, "/")


def _refuse_unsaved(session: DatasetSession) -> None:
    if session.unsaved():
        raise LorakitError("unsaved edits: save or revert them first")


async def _in_thread(function: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


class Guard:
    """The ASGI wrapper that enforces the token, the Host header and the Origin of POSTs (module docstring)."""

    def __init__(self, app: Any, token: str, allowed_hosts: set[str], redirect: Any) -> None:
        self.app, self.token, self.allowed_hosts, self.redirect = app, token, allowed_hosts, redirect

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        method = scope.get("method", "GET")
        if host not in self.allowed_hosts:
            await _plain(send, 403, f"lorakit review: host {host!r} is not this server's name (DNS rebinding guard)")
            return
        if method not in ("GET", "HEAD", "POST"):
            await _plain(send, 405, "method not allowed")
            return
        if method == "POST":
            origin = headers.get("origin")
            if origin is not None and origin != f"http://{host}":
                await _plain(send, 403, "lorakit review: a request from another site is refused")
                return
            if not headers.get("content-type", "").startswith("application/json"):
                await _plain(send, 415, "lorakit review: requests that change anything send JSON")
                return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [""])[0]
        if scope.get("path") == "/" and given:
            if not hmac.compare_digest(given, self.token):
                await _plain(send, 403, "lorakit review: wrong token (use the URL `lorakit review` printed)")
                return
            response = self.redirect("/", status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
            await response(scope, receive, send)
            return
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no token
            pass
        presented = headers.get("x-lorakit-token") or (cookies[COOKIE].value if COOKIE in cookies else "")
        if not presented or not hmac.compare_digest(presented, self.token):
            await _plain(send, 403, "lorakit review: open the URL with its token that `lorakit review` printed")
            return
        await self.app(scope, receive, send)


async def _plain(send: Any, status: int, message: str) -> None:
    data = message.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
