"""ASGI apps whose imports are slow (Gradio's chat, the MCP server), built in the background while the server
already answers: a Late app is a placeholder in the route table that becomes the real app once it is built
and its lifespan has started. Until then a request waits for it (up to WAIT_SECONDS), or gets the
placeholder's own answer where it has one (the light chat page at /).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Callable

from starlette.responses import JSONResponse

log = logging.getLogger("qa.server")
WAIT_SECONDS = 60.0


class Late:
    def __init__(self, name: str, build: Callable[[], object], placeholder: Callable[[dict], object] | None = None):
        self.name, self._build, self._placeholder = name, build, placeholder
        self.built = None  # the app, once build() has returned
        self.failed = False
        self._ready: asyncio.Event | None = None  # set once its lifespan has started, on the serving loop

    def build(self):
        """Build now (on this thread); the app is served once serve() has started its lifespan."""
        if self.built is None:
            self.built = self._build()
        return self.built

    @property
    def ready(self) -> bool:
        return self._ready is not None and self._ready.is_set() and not self.failed

    async def serve(self, stop: asyncio.Event) -> None:
        """Run the built app's lifespan (its startup events and task groups) on the serving loop until stop is
        set: one task enters and leaves it, as anyio's cancel scopes require."""
        try:
            router = getattr(self.built, "router", None)
            async with (router.lifespan_context(self.built) if router else contextlib.nullcontext()):
                self._event().set()
                await stop.wait()
        except Exception:
            self.failed = True
            log.exception("the %s failed", self.name)
            self._event().set()  # wakes the requests waiting for it

    def _event(self) -> asyncio.Event:
        if self._ready is None:
            self._ready = asyncio.Event()
        return self._ready

    async def __call__(self, scope, receive, send):
        if not self.ready and scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1013})  # try again later
        if not self.ready:
            page = self._placeholder(scope) if self._placeholder else None
            if page is not None:
                return await page(scope, receive, send)
            message = f"The {self.name} could not start; the server's log says why."
            if not self.failed:
                try:
                    await asyncio.wait_for(self._event().wait(), WAIT_SECONDS)
                except asyncio.TimeoutError:
                    message = f"The {self.name} is still starting; please retry in a moment."
            if not self.ready:
                return await JSONResponse({"error": message}, status_code=503, headers={"Retry-After": "2"})(
                    scope, receive, send)
        return await self.built(scope, receive, send)


@contextlib.asynccontextmanager
async def started_in_background(lates: list[Late]):
    """While in this context (a server's lifespan), each app is built in turn on a thread and served on this
    loop as soon as it is built; leaving it ends their lifespans."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    tasks: list[asyncio.Task] = []
    for late in lates:
        late._event()  # made on the serving loop

    def run() -> None:
        for late in lates:
            if stop.is_set():
                return
            try:
                late.build()
            except Exception:
                late.failed = True
                log.exception("the %s failed to start", late.name)
            try:
                if late.failed:
                    loop.call_soon_threadsafe(late._event().set)  # wakes the requests waiting for it
                else:
                    loop.call_soon_threadsafe(lambda late=late: stop.is_set() or tasks.append(
                        loop.create_task(late.serve(stop))))
            except RuntimeError:  # the server stopped (and its loop closed) while this was being built
                return

    threading.Thread(target=run, name="qa-late-apps", daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
