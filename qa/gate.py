"""How many questions are answered at once over HTTP and MCP: a slot per answer being computed, a short
wait on the event loop for one, and "busy, retry" beyond that.

Gate.run(work) runs work() on a worker thread once one of max_concurrent slots is free. Waiting is done on
the event loop, holding no thread: past WAITING_PER_SLOT waiting requests per slot, or BUSY_WAIT_SECONDS of
waiting, it raises Busy (429, retry) rather than leave a client to time out. Gate.answered(work) gives
(status, body) instead, for the routes that answer JSON.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool

from .assistant import STARTUP_WAIT_SECONDS, Assistant
from .errors import BadQuestion, Busy, QAError, told

log = logging.getLogger("qa.server")
BUSY_WAIT_SECONDS = 10
WAITING_PER_SLOT = 16  # questions waiting for a slot, per slot (64 by default); more get 429 at once


@dataclass(frozen=True)
class Outcome:
    """What answering over HTTP gave: status 200 and the work's result, or an error status and its body."""
    status: int
    body: Any


def error_json(status: int, message: str) -> dict:
    return {"error": message}


class Gate:
    def __init__(self, assistant: Assistant, max_concurrent: int):
        self.assistant, self.max_concurrent = assistant, max_concurrent
        self._slots: asyncio.Semaphore | None = None  # made on the serving loop
        self.waiting = 0  # requests waiting for a slot

    async def run(self, work: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_WAIT_SECONDS
        while self.assistant.starting and loop.time() < deadline:  # the index is being prepared: wait, holding nothing
            await asyncio.sleep(0.1)
        self.assistant.wait_until_ready(0)  # NotReady past the deadline, or the start-up error
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent)
        slots = self._slots
        if self.waiting >= WAITING_PER_SLOT * self.max_concurrent:
            raise Busy()
        self.waiting += 1
        try:
            await asyncio.wait_for(slots.acquire(), BUSY_WAIT_SECONDS)
        except asyncio.TimeoutError:
            raise Busy() from None
        finally:
            self.waiting -= 1
        # The slot is released when the work ends, even if this request is cancelled meanwhile (the thread
        # cannot be stopped): otherwise more than max_concurrent questions would run at once.
        job = asyncio.ensure_future(run_in_threadpool(work))
        job.add_done_callback(lambda done: (slots.release(), done.cancelled() or done.exception()))
        return await asyncio.shield(job)

    async def answered(self, work: Callable[[], Any], shape: Callable[[int, str], Any] = error_json) -> Outcome:
        """work()'s result through the gate, or the error's status and message in the given shape."""
        try:
            return Outcome(200, await self.run(work))
        except Busy as e:
            return Outcome(429, shape(429, e.public))
        except BadQuestion as e:
            return Outcome(400, shape(400, str(e)))
        except QAError as e:  # NotReady, a failed start-up, an index that cannot be read
            return Outcome(503, shape(503, told(e)))
        except Exception:
            log.exception("request failed")
            return Outcome(500, shape(500, "Something went wrong on the server. Please try again."))
