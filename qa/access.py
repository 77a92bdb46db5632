"""Access control for a shared deployment: what each route needs, login sessions, tokens, failed-attempt limits.

Off unless Config.access_token is set. Then (the README's table):
  chat page, Gradio API, anything not named below  -> a login session (a signed, expiring cookie)
  /api/* and /docs, /openapi.json                   -> the access token as a bearer token, or a session
  /v1/*, /mcp                                       -> the bearer token
  /widget.js, /embed, /embed/ask, /embed/about      -> a session (bearer for the last two); public with public_widget
  POST /api/documents                               -> the admin token, checked by the route (as without this)
  /login, /logout                                   -> public
Public means public for the methods those routes serve (PUBLIC_ROUTES); any other method needs a session.
  /api/health                                       -> public, but its details only with credentials
Unknown routes need a session, so a route added later is protected until the table says otherwise.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

SESSION_COOKIE = "qa_session"
SESSION_SECONDS = 12 * 3600  # a login lasts this long
MAX_FAILURES = 10  # failed logins or wrong tokens from one address within FAILURE_WINDOW_SECONDS...
FAILURE_WINDOW_SECONDS = 300  # ...lock that address out until the window has passed
_TRACKED_ADDRESSES = 10_000  # failure counts kept for at most this many addresses (oldest dropped)


class Need(Enum):
    PUBLIC = "public"
    SESSION = "login"  # a session cookie
    BEARER = "bearer token"
    EITHER = "bearer token or login"
    ADMIN = "admin token"  # checked by the route itself (QA_ADMIN_TOKEN), not by the guard


READING = ("GET", "HEAD")
# (path, methods) open without the access token; any other method on these paths needs a session as well
PUBLIC_ROUTES = {"/login": ("GET", "HEAD", "POST"), "/logout": READING, "/api/health": READING}
WIDGET_ROUTES = {"/widget.js": READING, "/embed": READING, "/embed/ask": ("POST",), "/embed/about": READING}


def need(path: str, public_widget: bool, method: str = "GET") -> Need:
    """What a request (method, path) must bring when access control is on."""
    if path == "/api/documents" and method == "POST":
        return Need.ADMIN
    if method in PUBLIC_ROUTES.get(path, ()) or (public_widget and method in WIDGET_ROUTES.get(path, ())):
        return Need.PUBLIC
    if path.startswith("/v1/") or path == "/v1" or path == "/mcp" or path.startswith("/mcp/"):
        return Need.BEARER
    if path in ("/widget.js", "/embed"):
        return Need.SESSION
    if path in ("/embed/ask", "/embed/about"):
        return Need.EITHER
    if path.startswith("/api/") or path in ("/docs", "/openapi.json") or path.startswith("/docs-assets/"):
        return Need.EITHER
    return Need.SESSION


def token_ok(expected: str, given: str | None) -> bool:
    """Constant-time comparison (of digests, so that not even the length shows); with no token configured,
    nothing matches."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(hashlib.sha256(expected.encode()).digest(), hashlib.sha256(given.encode()).digest())


def bearer(authorization: str | None) -> str | None:
    """The token of an "Authorization: Bearer TOKEN" header."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


@functools.lru_cache(maxsize=4)
def _session_key(access_token: str) -> bytes:
    """The cookies' signing key: scrypt of the token (slow on purpose, so that a cookie does not let anyone test
    guesses of the token quickly offline)."""
    return hashlib.scrypt(access_token.encode(), salt=b"qa session v1", n=2**14, r=8, p=1, dklen=32)


@dataclass(frozen=True)
class Sessions:
    """Login cookies: expiry and a nonce, signed with a key derived from the access token (so changing the
    token ends every session, and a restart does not)."""
    access_token: str

    def _sign(self, payload: str) -> str:
        return hmac.new(_session_key(self.access_token), payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> str:
        payload = f"{int((now or time.time()) + SESSION_SECONDS)}.{secrets.token_hex(8)}"
        return f"{payload}.{self._sign(payload)}"

    def valid(self, cookie: str | None, now: float | None = None) -> bool:
        if not cookie or cookie.count(".") != 2:
            return False
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(self._sign(payload), signature):
            return False
        expires = payload.split(".", 1)[0]
        return expires.isdigit() and int(expires) > (now or time.time())


def client_address(request) -> str:
    """The address a request (a Starlette or Gradio request) came from, which failures are counted against."""
    client = getattr(request, "client", None)
    return client.host if client else "unknown"


def _client(address: str) -> str:
    """Whom failures are counted against: the IPv4 address, or the /64 network of an IPv6 one (a client can
    pick any address of its /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


class Attempts:
    """Failed logins and wrong tokens per client (address, or IPv6 /64); too many within the window lock the
    client out."""

    def __init__(self):
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def locked_for(self, address: str, now: float | None = None) -> int:
        """Seconds until this address may try again (0: it may now)."""
        now = now or time.monotonic()
        recent = [t for t in self._failures.get(_client(address), ()) if t > now - FAILURE_WINDOW_SECONDS]
        if len(recent) < MAX_FAILURES:
            return 0
        return max(1, int(recent[0] + FAILURE_WINDOW_SECONDS - now) + 1)

    def failed(self, address: str, now: float | None = None) -> None:
        now = now or time.monotonic()
        client = _client(address)
        times = [t for t in self._failures.pop(client, []) if t > now - FAILURE_WINDOW_SECONDS]
        self._failures[client] = (times + [now])[-MAX_FAILURES:]
        while len(self._failures) > _TRACKED_ADDRESSES:
            self._failures.popitem(last=False)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (never //host or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
