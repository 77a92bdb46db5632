"""Access control on the web: the ASGI guard in front of every route, and the /login and /logout pages.

The guard asks access.need() what a path requires and lets a request through only with it: a browser asking
for a page without a session is sent to /login; anything else gets 401 (429 while its address is locked out
after too many wrong tokens). Tokens and cookies are never logged.
"""
from __future__ import annotations

import html
from urllib.parse import quote

from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .access import (SESSION_COOKIE, SESSION_SECONDS, Attempts, Need, Sessions, bearer, client_address, need,
                     safe_next, token_ok)
from .config import Config
from .errors import openai_error

AUTHENTICATED = "qa_authenticated"  # scope["state"] key: did the request bring valid credentials


class Guard:
    """ASGI middleware: a route runs only when the request brings what access.need() asks for."""

    def __init__(self, app, config: Config, attempts: Attempts):
        self.app, self.config, self.attempts = app, config, attempts
        self.sessions = Sessions(config.access_token)

    def _refusal(self, conn: HTTPConnection) -> tuple[Response | None, bool]:
        """(the response refusing the request or None to let it through, whether it brought credentials)."""
        path = conn.url.path
        required = need(path, self.config.public_widget, conn.scope.get("method", "GET"))
        if required is Need.ADMIN:
            return None, False
        token = bearer(conn.headers.get("authorization"))
        address = client_address(conn)
        bearer_ok = False
        if token is not None:
            if self.attempts.locked_for(address):
                return self._locked(address), False
            bearer_ok = token_ok(self.config.access_token, token)
            if not bearer_ok:
                self.attempts.failed(address)
                if required is not Need.PUBLIC:
                    return self._unauthorized(path, required, wrong=True), False
        if bearer_ok and required in (Need.PUBLIC, Need.BEARER, Need.EITHER):
            return None, True
        session = self.sessions.valid(conn.cookies.get(SESSION_COOKIE))
        if required is Need.PUBLIC or (session and required in (Need.SESSION, Need.EITHER)):
            return None, session
        if required is Need.SESSION and conn.scope["type"] == "http" and conn.scope.get("method") == "GET" \
                and "text/html" in conn.headers.get("accept", ""):
            target = path + (f"?{conn.url.query}" if conn.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303), False
        return self._unauthorized(path, required), False

    def _unauthorized(self, path: str, required: Need, wrong: bool = False) -> Response:
        what = {Need.SESSION: "Log in at /login", Need.BEARER: "Send Authorization: Bearer TOKEN (the access token)",
                Need.EITHER: "Send Authorization: Bearer TOKEN, or log in at /login"}[required]
        message = ("The access token is wrong. " if wrong else "This server needs credentials. ") + what + "."
        body = openai_error(message, "authentication_error") if path.startswith("/v1") else {"error": message}
        return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    def _locked(self, address: str) -> Response:
        wait = self.attempts.locked_for(address)
        return JSONResponse({"error": f"Too many wrong tokens or passwords; try again in {wait} s."},
                            status_code=429, headers={"Retry-After": str(wait)})

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        refusal, authenticated = self._refusal(HTTPConnection(scope))
        if refusal is None:
            scope.setdefault("state", {})[AUTHENTICATED] = authenticated
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        return await refusal(scope, receive, send)


def _page(next_path: str, message: str = "") -> str:
    note = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Log in: ask your documents</title>
<style>body{{font:16px system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;margin:0;background:#f6f7f9}}
form{{background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0002;width:min(22rem,90vw)}}
input,button{{font:inherit;width:100%;box-sizing:border-box;padding:.6rem;margin-top:.5rem}}
button{{background:#2563eb;color:#fff;border:0;border-radius:6px;cursor:pointer}}.error{{color:#b91c1c}}</style>
</head><body><form method="post" action="/login"><h1>Ask your documents</h1>{note}
<label for="token">Access token</label><input id="token" name="token" type="password" autocomplete="current-password"
autofocus required><input type="hidden" name="next" value="{html.escape(next_path)}"><button type="submit">Log in</button>
</form></body></html>"""


def add_login_routes(app, config: Config, attempts: Attempts) -> None:
    sessions = Sessions(config.access_token)

    @app.get("/login", include_in_schema=False)
    def login_page(next: str = "/"):
        return HTMLResponse(_page(safe_next(next)))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request):
        address = client_address(request)
        if wait := attempts.locked_for(address):
            return HTMLResponse(_page("/", f"Too many wrong tokens; try again in {wait} s."), status_code=429,
                                headers={"Retry-After": str(wait)})
        try:
            form = await request.form(max_files=0, max_fields=4)
        except Exception:
            return HTMLResponse(_page("/", "Send the form as the login page does."), status_code=400)
        target = safe_next(str(form.get("next") or "/"))
        if not token_ok(config.access_token, str(form.get("token") or "")):
            attempts.failed(address)
            return HTMLResponse(_page(target, "That token is not right."), status_code=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, sessions.issue(), max_age=SESSION_SECONDS, httponly=True,
                            samesite="lax", secure=request.url.scheme == "https", path="/")
        return response

    @app.get("/logout", include_in_schema=False)
    def logout():
        response = RedirectResponse("/", status_code=303)  # which, with no session, leads to the login page
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
