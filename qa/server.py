"""The HTTP server: a FastAPI app with the JSON API, the embeddable widget and the Gradio chat mounted beside them.

Routes: /api/ask, /api/search, /api/health (JSON; docs at /docs), /v1/models and /v1/chat/completions
(OpenAI-compatible), /mcp (MCP over streamable HTTP), /widget.js, /embed and /embed/ask (the floating chat
for other sites), /gradio.js (Gradio's web-component script, served here rather than from a CDN), and / (the
full chat page); /login and /logout when an access token is set (login.py guards every route then).
Origins allowed by config may call the API and frame the pages.
"""
import contextlib
import errno
import importlib.util
import logging
import socket
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, StrictInt
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from .answer_html import answer_html, button_marker, sources_html
from .assistant import MAX_EXAMPLES, MAX_K, Assistant
from .config import Config
from .errors import IndexBusy, QAError, ServerUnavailable, told
from .access import Attempts, bearer, client_address, token_ok
from .gate import WAITING_PER_SLOT, Gate
from .late import Late, started_in_background
from .login import AUTHENTICATED, Guard, add_login_routes
from .records import Answer
from .web import default_examples
from .uploads import MAX_UPLOAD_BYTES, MAX_UPLOAD_FILES, UploadRefused, UploadTooLarge, add_documents

log = logging.getLogger("qa.server")
STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY_CHARS = 20_000  # a question longer than this is refused; up to it, it is trimmed with a notice
MAX_ASK_K = 20
MAX_ASK_BYTES = 4 * 2**20  # an /api/ask body (question and history) larger than this is refused unread
# only allowed origins may call these
API_PATHS = ("/api/", "/gradio_api/", "/v1/", "/embed/ask", "/embed/about", "/mcp")
SIZED_POSTS = ("/api/ask", "/embed/ask", "/v1/chat/completions")  # bodies read whole: a Content-Length is required


class AskRequest(BaseModel):
    question: str = Field(description="the question; over 2,000 characters it is trimmed, with a notice")
    history: list = Field(default_factory=list, description="earlier turns, oldest first: the user's questions "
                          "as strings, or chat messages {role, content}")
    k: StrictInt | None = Field(default=None, description=f"passages to read, 1-{MAX_ASK_K} (default 5)")


def _origin_allowed(config: Config, origin: str | None, host: str | None) -> bool:
    if origin is None or "*" in config.origins:
        return True
    if host and urlsplit(origin).netloc == host:
        return True  # our own pages
    return origin.rstrip("/") in config.origins


def create_app(assistant: Assistant, config: Config):
    """The app. The chat page and the MCP server are built on a thread once the server has started (their
    imports take seconds); the API and a light chat page answer meanwhile. app.state.late holds the two."""
    from . import openai_api

    def build_chat():  # imports Gradio: seconds on a slow CPU, so it is done in the background
        import tqdm

        # Gradio's progress tracking patches tqdm's methods to read an attribute its patched __init__ sets: a
        # progress bar of a build already running (made before the patch) needs it too, or its next update fails
        tqdm.tqdm._progress = None
        import gradio as gr

        from .web import COPY_SHOWN_TEXT, CSS, build_app, default_examples

        demo = build_app(assistant, default_examples(config), attempts)
        demo.queue(default_concurrency_limit=config.max_concurrent,
                   max_size=WAITING_PER_SLOT * config.max_concurrent)
        holder = gr.mount_gradio_app(FastAPI(), demo, path="", footer_links=["api"], show_error=False,
                                     ssr_mode=False, theme=gr.themes.Default(), css=CSS, js=COPY_SHOWN_TEXT)
        demo.has_launched = True  # as launch() sets it: Gradio checks the file paths in requests only after that
        return holder

    def build_mcp_app():
        from .mcp_server import build_mcp

        from mcp.server.transport_security import TransportSecuritySettings

        # The app's own origin policy (API_PATHS, QA_ALLOWED_ORIGINS) guards /mcp as it guards /v1: the SDK's
        # check allows only localhost Host headers, which refuses every request behind a reverse proxy
        return build_mcp(assistant, gate.run).streamable_http_app(
            streamable_http_path="/mcp", stateless_http=True, json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))

    def light_page(scope):  # the chat page while Gradio loads: the embed's light chat, which then becomes it
        if scope["path"] == "/" and scope.get("method") in ("GET", "HEAD"):
            return HTMLResponse((STATIC / "embed.html").read_text(encoding="utf-8"))
        return None

    chat, mcp = Late("chat page", build_chat, light_page), Late("MCP server", build_mcp_app)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        async with started_in_background([chat, mcp]):
            yield

    gate = Gate(assistant, config.max_concurrent)
    app = FastAPI(title="qa: ask your documents", version="1", docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Answers from your documents, citing the exact sentences.")
    attempts = Attempts()

    def error(status: int, message: str, **headers: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers or None)

    def failure(status: int, e: QAError, **headers: str) -> JSONResponse:
        """The error's client-safe message; the whole one (with paths and the fix) goes to the server log."""
        return error(status, told(e), **headers)

    async def answer_json(work) -> JSONResponse:
        outcome = await gate.answered(work)
        retry = {429: {"Retry-After": "2"}, 503: {"Retry-After": "5"}}.get(outcome.status)
        return JSONResponse(outcome.body, status_code=outcome.status, headers=retry)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):  # FastAPI's own: always JSON {"error"}
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):  # bad UTF-8, nesting too deep
            return error(422, "The request body is not valid JSON.")
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return error(422, "The request body is not valid JSON.")
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return error(422, f"invalid {where}: {first.get('msg', 'bad value')}")

    async def asked(body: AskRequest, as_json: Callable[[Answer], dict]) -> JSONResponse:
        """An ask request answered as as_json(answer), or refused: a question too long, a k out of range."""
        if len(body.question) > MAX_BODY_CHARS:
            return error(413, f"The question is too long (over {MAX_BODY_CHARS} characters).")
        if body.k is not None and not 1 <= body.k <= MAX_ASK_K:
            return error(400, f"k must be between 1 and {MAX_ASK_K}, got {body.k}.")
        return await answer_json(lambda: as_json(assistant.ask(body.question, history=body.history, k=body.k)))

    @app.post("/api/ask", summary="Answer a question with citations")
    async def api_ask(body: AskRequest):
        return await asked(body, Answer.to_json)

    @app.post("/embed/ask", summary="The embedded chat's own asking route (as /api/ask; public with "
              "QA_PUBLIC_WIDGET=1 when an access token is set)")
    async def embed_ask(body: AskRequest):
        """As /api/ask, with the answer and its sources rendered as the chat renders them (answer_html.py)."""
        return await asked(body, lambda answer: {**answer.to_json(), "answer_html": answer_html(answer, button_marker),
                                                 "sources_html": sources_html(answer)})

    @app.get("/embed/about", include_in_schema=False)
    def embed_about(request: Request):
        """The collection the light chat and the widget name, with example questions for it (its size, as
        /api/health's facts, only with credentials when an access token is set)."""
        if not assistant.ready and assistant.startup_error is None:
            return JSONResponse({"error": "starting"}, status_code=503, headers={"Retry-After": "2"})
        try:
            found = assistant.collection(tuple(default_examples(config)))
        except QAError as e:
            return failure(503, e)
        about = {"name": found.name, "examples": list(found.examples)[:MAX_EXAMPLES]}
        if config.access_token and not request.scope.get("state", {}).get(AUTHENTICATED):
            return about
        return {**about, "files": found.files, "chunks": found.chunks}

    app.include_router(openai_api.router(gate, assistant, MAX_BODY_CHARS))
    app.router.routes.append(Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]))
    app.state.late = (chat, mcp)
    if config.access_token:
        add_login_routes(app, config, attempts)

    @app.get("/api/search", summary="The passages closest to a query")
    async def api_search(q: str = Query(description="the query"), k: int = Query(default=5, description=f"1-{MAX_K}")):
        if len(q) > MAX_BODY_CHARS:
            return error(413, f"The query is too long (over {MAX_BODY_CHARS} characters).")
        if not 1 <= k <= MAX_K:
            return error(400, f"k must be between 1 and {MAX_K}, got {k}.")
        return await answer_json(lambda: {"query": q, "hits": [h.to_json() for h in assistant.search(q, k)]})

    @app.post("/api/documents", summary="Add documents (needs the admin token)", responses={
        401: {"description": "no or wrong token"}, 404: {"description": "uploads are off"}})
    async def api_documents(request: Request):
        if not config.admin_token:
            return error(404, "Uploads are off: the server has no admin token (QA_ADMIN_TOKEN).")
        address = client_address(request)
        if wait := attempts.locked_for(address):  # wrong tokens of any kind count against the address
            return error(429, f"Too many wrong tokens; try again in {wait} s.", **{"Retry-After": str(wait)})
        given = bearer(request.headers.get("authorization"))
        if not token_ok(config.admin_token, given):
            if given is not None:  # a guess, not a request that forgot the token
                attempts.failed(address)
            return error(401, "A valid admin token is required: Authorization: Bearer TOKEN.")
        try:
            form = await request.form(max_files=MAX_UPLOAD_FILES + 1, max_part_size=MAX_UPLOAD_BYTES + 1)
        except Exception:
            return error(400, f"Send the files as multipart/form-data (at most {MAX_UPLOAD_FILES} files, "
                         f"{MAX_UPLOAD_BYTES // 2**20} MB each).")
        uploads = [item for _, item in form.multi_items() if hasattr(item, "read")]
        files = [(u.filename or "", await u.read(MAX_UPLOAD_BYTES + 1)) for u in uploads]
        try:
            return JSONResponse(await run_in_threadpool(add_documents, assistant, files))
        except UploadRefused as e:
            return error(413 if isinstance(e, UploadTooLarge) else 400, str(e))
        except IndexBusy as e:
            return failure(409, e)
        except QAError as e:
            return failure(503, e)
        except OSError as e:  # the data folder is read-only or full
            log.warning("storing uploaded files failed: %s", e)
            return error(507, "The files cannot be stored on the server (its disk is full or read-only).")

    @app.get("/api/health", summary="Status and index facts (the facts only with credentials when an access token "
             "is set)")
    def api_health(request: Request):
        if not assistant.ready and assistant.startup_error is None:
            return JSONResponse({"status": "starting"}, status_code=503, headers={"Retry-After": "2"})
        try:
            m = assistant.index.manifest
        except QAError as e:
            return JSONResponse({"status": "error", "error": e.public}, status_code=503)  # polled: not logged each time
        if config.access_token and not request.scope.get("state", {}).get(AUTHENTICATED):
            return {"status": "ok"}
        return {"status": "ok", "chunks": m["chunk_count"], "files": m["file_count"], "model": m["model"],
                "backend": m["backend"], "index_type": m["index_type"], "dimension": m["dimension"],
                "built_at": m["built_at"]}

    @app.get("/docs", include_in_schema=False)
    def docs():  # Swagger UI from the swagger-ui-bundle-v2 package: FastAPI's default loads it from a CDN
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title}: API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    methods = {"ask": "POST", "search": "GET", "health": "GET", "documents": "POST"}

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def api_unknown(rest: str, request: Request):  # after the real routes: the mounted chat would answer with HTML
        if rest in methods:
            return error(405, f"Use {methods[rest]} /api/{rest} (see /docs).")
        return error(404, f"No such route: /api/{rest} (see /docs).")

    @app.get("/widget.js", include_in_schema=False)
    def widget_js():
        return FileResponse(STATIC / "widget.js", media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=300"})

    @app.get("/embed", include_in_schema=False)
    def embed_page():
        return HTMLResponse((STATIC / "embed.html").read_text(encoding="utf-8"))

    @app.get("/gradio.js", include_in_schema=False)
    def gradio_js():
        gradio = Path(importlib.util.find_spec("gradio").origin).parent  # found without importing it (seconds)
        return FileResponse(gradio / "templates" / "frontend" / "gradio.js",
                            media_type="text/javascript")

    if config.access_token:  # inside CORS, so that a refusal still carries the CORS headers a browser needs
        app.add_middleware(Guard, config=config, attempts=attempts)
    app.add_middleware(CORSMiddleware, allow_origins=list(config.origins), allow_methods=["GET", "POST"],
                       allow_headers=["*"], max_age=600)  # Gradio's client sends x-gradio-* headers

    @app.middleware("http")  # added after CORS, so it runs first: a refused origin's preflight also gets a 403
    async def origins_and_framing(request: Request, call_next):
        origin = request.headers.get("origin")
        if request.url.path in SIZED_POSTS and request.method == "POST":
            size = request.headers.get("content-length", "")
            if not size.isdigit():  # a chunked body could be any size: it would be read whole
                return error(411, "Send the question with a Content-Length header.")
            if int(size) > MAX_ASK_BYTES:
                return error(413, f"The request is too large (over {MAX_ASK_BYTES // 2**20} MB).")
        if request.url.path.startswith(API_PATHS) and not _origin_allowed(config, origin, request.headers.get("host")):
            return error(403, "This origin may not use the API.")
        response: Response = await call_next(request)
        if response.headers.get("content-type", "").startswith("text/html"):
            ancestors = "*" if "*" in config.origins else " ".join(("'self'",) + config.origins)
            response.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


    app.mount("", chat)  # after every other route: Gradio's page and API
    return app


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so that a busy port is one clear error rather than a traceback."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this (Linux). Without it, a keep-alive client's every request waited
        # ~40 ms (Nagle's algorithm against the client's delayed ACK): asyncio sets TCP_NODELAY only on sockets
        # whose protocol is IPPROTO_TCP, which a socket made with protocol 0 does not report.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except socket.gaierror:
        raise ServerUnavailable(f"cannot listen on {host!r}: no such address; set --host or QA_HOST") from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ServerUnavailable(f"port {port} on {host} is in use; choose another with --port or QA_PORT") \
                from None
        raise ServerUnavailable(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(assistant: Assistant, config: Config, sock: socket.socket | None = None,
          prepare: Callable[[], None] | None = None) -> None:
    """Serve the app. prepare (bring the index up to date, load the model) runs in the background while the
    page is already served; if it fails, the server stops and the error is raised here."""
    import uvicorn

    sock = sock or bind(config.host, config.port)
    app = create_app(assistant, config)  # quick: Gradio and the MCP server are imported once it serves
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    if prepare is not None:
        def failed(_error: QAError) -> None:
            server.should_exit = True

        assistant.start(prepare, failed)
    if assistant.startup_error is None:
        server.run(sockets=[sock])
    if assistant.startup_exception is not None:
        raise assistant.startup_exception
