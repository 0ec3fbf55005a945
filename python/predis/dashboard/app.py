"""The dashboard's web app (Starlette): login, the overview and model pages, their JSON APIs,
a server-sent-event stream for live refresh, and the static files (plotly.js from the
installed ``plotly`` package; no CDN).

Every route but the login form and the stylesheet needs a session. Pages without one
redirect to ``/login``; API routes answer 401. A session sees only its own customer: asking
for another is 403. Responses carry a strict Content-Security-Policy (scripts from this
origin only; no inline script).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from predis.dashboard.auth import LoginRateLimiter, Session, SessionStore, new_csrf_token
from predis.dashboard.config import CustomerConfig
from predis.dashboard.views import Views
from predis.errors import PredisError
from predis.security.tokens import TokenStore
from predis.security.validation import validate_customer_id

__all__ = ["SESSION_COOKIE", "build_app", "plotly_js_path"]

log = logging.getLogger("predis.dashboard")

SESSION_COOKIE = "predis_session"
LOGIN_CSRF_COOKIE = "predis_login_csrf"
_HERE = Path(__file__).resolve().parent
_MAX_FORM = 8192
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    # plotly.js sets inline styles on the SVG it draws; scripts stay strict.
    "style-src 'self' 'unsafe-inline'; font-src 'self' data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def plotly_js_path() -> Path:
    """The plotly.min.js bundled in the installed ``plotly`` package."""
    import plotly  # noqa: PLC0415 - the dashboard extra

    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise PredisError(
            f"the plotly package has no bundled plotly.min.js at {path}; reinstall plotly"
        )
    return path


def _json_default(o: object) -> object:
    raise TypeError(f"not JSON: {type(o).__name__}")


def _dumps(data: Any) -> str:
    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(data), default=_json_default, separators=(",", ":"))


class _JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return _dumps(content).encode("utf-8")


def build_app(
    views: Views,
    customers: dict[str, CustomerConfig],
    tokens: TokenStore,
    *,
    session_ttl_s: float,
    login_failures: int,
    login_window_s: float,
    refresh_s: float,
    tls: bool,
    stopping: Callable[[], bool] = lambda: False,
) -> Starlette:
    """The Starlette app over ``views`` (see :class:`~predis.dashboard.DashboardServer`)."""
    sessions = SessionStore(session_ttl_s)
    limiter = LoginRateLimiter(login_failures, login_window_s)
    env = Environment(
        loader=FileSystemLoader(str(_HERE / "templates")),
        autoescape=select_autoescape(["html"]),
    )
    static = {
        "dashboard.js": (_HERE / "static" / "dashboard.js", "text/javascript"),
        "dashboard.css": (_HERE / "static" / "dashboard.css", "text/css"),
        "plotly.min.js": (plotly_js_path(), "text/javascript"),
    }
    public_static = {"dashboard.css"}

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status)

    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def session_of(request: Request) -> Session | None:
        sid = request.cookies.get(SESSION_COOKIE)
        s = sessions.get(sid)
        if s is None:
            return None
        # A revoked or expired token ends its sessions at once.
        try:
            info = next((i for i in tokens.list_tokens(s.customer) if i.id == s.token_id), None)
        except PredisError:
            info = None
        if (
            info is None
            or info.revoked
            or (info.expires is not None and info.expires <= time.time())
        ):
            sessions.end_token(s.token_id)
            return None
        return s

    def customer_for(request: Request, s: Session) -> CustomerConfig | Response:
        raw = request.query_params.get("customer")
        if raw is not None:
            try:
                cid = validate_customer_id(raw)
            except PredisError as exc:
                return _JSON({"error": str(exc)}, status_code=400)
            if cid != s.customer:
                return _JSON(
                    {"error": "this login may see only its own customer's data"}, status_code=403
                )
        c = customers.get(s.customer)
        if c is None:
            return _JSON(
                {
                    "error": f"no dashboard is configured for customer {s.customer}; "
                    "add it to the customers config"
                },
                status_code=404,
            )
        return c

    def origin_ok(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None:  # not sent by every client; SameSite and the CSRF token still hold
            return True
        scheme = "https" if tls else "http"
        return origin == f"{scheme}://{request.headers.get('host', '')}"

    async def form(request: Request) -> dict[str, str] | None:
        if (
            request.headers.get("content-type", "").split(";")[0].strip()
            != "application/x-www-form-urlencoded"
        ):
            return None
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FORM:
                return None
        try:
            parsed = parse_qs(body.decode("utf-8"), max_num_fields=10, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            return None
        return {k: v[0] for k, v in parsed.items() if v}

    def set_cookie(resp: Response, name: str, value: str, max_age: int) -> None:
        resp.set_cookie(
            name, value, max_age=max_age, path="/", httponly=True, samesite="strict", secure=tls
        )

    # ---- login / logout ----

    async def login_form(error: str | None = None, status: int = 200) -> Response:
        csrf = new_csrf_token()
        resp = page("login.html", status, csrf=csrf, error=error)
        set_cookie(resp, LOGIN_CSRF_COOKIE, csrf, 3600)
        return resp

    async def login_get(request: Request) -> Response:
        if session_of(request) is not None:
            return RedirectResponse("/", status_code=303)
        return await login_form()

    async def login_post(request: Request) -> Response:
        addr = client(request)
        wait = limiter.retry_after(addr)
        if wait > 0:
            resp = await login_form("too many failed logins; try again later", 429)
            resp.headers["Retry-After"] = str(math.ceil(wait))
            return resp
        fields = await form(request)
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        given = (fields or {}).get("csrf", "")
        if (
            fields is None
            or not origin_ok(request)
            or not cookie
            or not secrets.compare_digest(cookie.encode(), given.encode())
        ):
            return await login_form("the form expired or came from another site; log in again", 403)
        token = fields.get("token", "").strip()
        try:
            info = await anyio.to_thread.run_sync(tokens.verify, token, "dashboard")
        except PredisError:
            limiter.fail(addr)
            log.info("predis dashboard: failed login from %s", addr)
            return await login_form(
                "login failed: the token is wrong, expired, revoked or lacks the dashboard scope",
                401,
            )
        limiter.succeed(addr)
        sid, _ = sessions.create(info.customer, info.id)
        resp = RedirectResponse("/", status_code=303)
        set_cookie(resp, SESSION_COOKIE, sid, int(session_ttl_s))
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return resp

    async def logout(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return _JSON({"error": "not logged in"}, status_code=401)
        fields = await form(request)
        given = (fields or {}).get("csrf", "")
        if not origin_ok(request) or not secrets.compare_digest(s.csrf.encode(), given.encode()):
            return _JSON({"error": "missing or wrong CSRF token"}, status_code=403)
        sessions.delete(request.cookies.get(SESSION_COOKIE))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    # ---- pages ----

    def page_route(template: str, name: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            s = session_of(request)
            if s is None:
                return RedirectResponse("/login", status_code=303)
            c = customer_for(request, s)
            if isinstance(c, Response):
                return c
            return page(
                template, customer=c.id, csrf=s.csrf, page=name, refresh_ms=int(refresh_s * 1000)
            )

        return handler

    # ---- API ----

    def api_route(
        fn: Callable[[CustomerConfig, Request], Any],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            s = session_of(request)
            if s is None:
                return _JSON({"error": "log in first (POST /login)"}, status_code=401)
            c = customer_for(request, s)
            if isinstance(c, Response):
                return c
            try:
                data = await anyio.to_thread.run_sync(fn, c, request)
            except PredisError as exc:
                return _JSON({"error": str(exc)}, status_code=400)
            return _JSON(data)

        return handler

    def overview_data(c: CustomerConfig, request: Request) -> dict[str, Any]:
        raw = request.query_params.get("range")
        range_s = None
        if raw is not None:
            try:
                range_s = float(raw)
            except ValueError:
                range_s = math.nan
            if not (60 <= range_s <= 366 * 86_400):
                raise PredisError("range must be a number of seconds between 60 and 31622400")
        return views.overview(c, range_s)

    def model_data(c: CustomerConfig, request: Request) -> dict[str, Any]:
        del request
        return views.model(c)

    async def stream(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return _JSON({"error": "log in first (POST /login)"}, status_code=401)
        c = customer_for(request, s)
        if isinstance(c, Response):
            return c
        which = request.query_params.get("page", "overview")
        if which not in ("overview", "model"):
            return _JSON({"error": "page must be 'overview' or 'model'"}, status_code=400)
        fn = views.overview if which == "overview" else views.model
        cookie = request.cookies.get(SESSION_COOKIE)

        async def events() -> AsyncIterator[dict[str, Any]]:
            while not stopping():
                if session_of(request) is None or sessions.get(cookie) is None:
                    yield {"event": "logout", "data": "{}"}
                    return
                data = await anyio.to_thread.run_sync(fn, c)
                yield {"event": which, "data": _dumps(data), "retry": int(refresh_s * 1000)}
                waited = 0.0
                while waited < refresh_s and not stopping():
                    if await request.is_disconnected():
                        return
                    step = min(0.25, refresh_s - waited)
                    await asyncio.sleep(step)
                    waited += step

        return EventSourceResponse(events(), ping=15, send_timeout=30)

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        entry = static.get(name)
        if entry is None:
            return Response("not found\n", status_code=404, media_type="text/plain")
        if name not in public_static and session_of(request) is None:
            return Response("log in first\n", status_code=401, media_type="text/plain")
        path, media = entry
        resp = FileResponse(path, media_type=media)
        resp.headers["Cache-Control"] = "private, max-age=3600"
        return resp

    routes = [
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", page_route("overview.html", "overview"), methods=["GET"]),
        Route("/model", page_route("model.html", "model"), methods=["GET"]),
        Route("/api/overview", api_route(overview_data), methods=["GET"]),
        Route("/api/model", api_route(model_data), methods=["GET"]),
        Route("/api/stream", stream, methods=["GET"]),
        Route("/static/{name}", static_file, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_SecurityHeaders, tls=tls)])


class _SecurityHeaders:
    """Pure ASGI middleware (streams pass through untouched): CSP and friends on every
    response, no-store on everything but the static files."""

    def __init__(self, app: ASGIApp, tls: bool) -> None:
        self.app = app
        extra = [
            ("content-security-policy", CSP),
            ("x-content-type-options", "nosniff"),
            # same-origin, not no-referrer: under no-referrer chromium sends `Origin: null` on
            # our own form posts, which the origin check must then refuse.
            ("referrer-policy", "same-origin"),
            ("x-frame-options", "DENY"),
        ]
        if tls:
            extra.append(("strict-transport-security", "max-age=31536000"))
        self.headers = [(k.encode(), v.encode()) for k, v in extra]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    h
                    for h in message.get("headers", [])
                    if h[0].lower() != b"cache-control" or static
                ]
                headers += self.headers
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, wrapped)
