"""The assistant: one loaded index and one model, answering search and ask requests for the CLI and the web."""
from __future__ import annotations

import itertools
import logging
import re
import sys
import threading
import time
import unicodedata
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .answering import SCORER_MIN_SCORE, compose_answer, key_terms
from .config import DEFAULT_BACKEND, Config
from .embedding import Embedder, set_faiss_threads, set_threads
from .errors import BadQuestion, IndexMismatch, ModelUnavailable, NotReady, QAError
from .cpu import build_device, torch_sees_cuda
from .indexing import (BuildReport, LoadedIndex, build_index, chosen_backend, encoder_dir, index_exists,
                       live_build_id, load_index, rebuild_command)
from .reader import MODELS_DIR, Reader
from .records import Answer, Hit
from .retrieval import hybrid_search
from .unmentioned import Vocabulary

log = logging.getLogger("qa.assistant")
MAX_K = 100
RELOAD_CHECK_SECONDS = 1.0  # how often a serving assistant looks for a newer build
STARTUP_WAIT_SECONDS = 60.0  # how long a request waits for a starting assistant before "retry"
MAX_HISTORY_TURNS = 20
_BACK_REFERENCE = re.compile(r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|there|the same)\b", re.I)


def _stderr_line(message: str) -> None:
    """A line beside the progress bar (on stderr, as tqdm's): what a build is doing before its bar starts."""
    print(message, file=sys.stderr, flush=True)


def previous_question(history: list) -> str:
    """The last question the user asked before this one. history: strings (the user's earlier questions)
    or chat messages {"role", "content"}, oldest first."""
    if not isinstance(history, (list, tuple)):
        raise BadQuestion("history must be a list of earlier questions or {role, content} messages.")
    if len(history) > 2 * MAX_HISTORY_TURNS:
        history = history[-2 * MAX_HISTORY_TURNS:]
    for turn in reversed(history):
        if isinstance(turn, str):
            text = turn
        elif isinstance(turn, dict) and isinstance(turn.get("content"), str):
            if turn.get("role", "user") != "user":
                continue
            text = turn["content"]
        else:
            raise BadQuestion("history must be a list of earlier questions or {role, content} messages.")
        if text.strip():
            return " ".join(text.split())[:500]
    return ""


def with_context(question: str, history: list) -> str:
    """The text to retrieve with: a follow-up that points back ("When was it created?") or names almost
    nothing gets the previous question in front of it; any other question stands alone."""
    previous = previous_question(history) if history else ""
    if previous and (_BACK_REFERENCE.search(question) or len(key_terms(question)) < 2):
        return f"{previous} {question}"
    return question


def clean_question(question: str, max_chars: int) -> tuple[str, str]:
    """(question, notice): control characters dropped, whitespace collapsed, trimmed to max_chars."""
    if not isinstance(question, str):
        raise BadQuestion("The question must be text.")
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in question)
    text = " ".join(text.split())
    if not text:
        raise BadQuestion("Please type a question.")
    if len(text) > max_chars:
        return text[:max_chars], f"Your question was trimmed to its first {max_chars} characters."
    return text, ""


@dataclass(frozen=True)
class Collection:
    """What the page says about the documents: the folder's name, its size, and example questions."""
    name: str
    files: int
    chunks: int
    examples: tuple[str, ...] = ()


MAX_EXAMPLES = 3


def heading_examples(sections: list[tuple[str, str]], count: int = MAX_EXAMPLES) -> tuple[str, ...]:
    """Example questions from a collection's headings ((source, heading path) of its chunks): one heading of two to
    seven words from each of the first files that have one, as "Tell me about <heading>"."""
    found: list[str] = []
    files: set[str] = set()
    for source, section in sections:
        heading = section.rsplit(" > ", 1)[-1] if section else ""
        words = heading.split()
        if source in files or not 2 <= len(words) <= 7 or heading.lower() in (f.lower() for f in found):
            continue
        files.add(source)
        found.append(heading)
        if len(found) == count:
            break
    return tuple(h[0].upper() + h[1:] if h.endswith("?") else
                 f"Tell me about {h[0].lower() + h[1:] if h[1:2].islower() else h}" for h in found)


class Assistant:
    """Cheap to construct; warm_up() loads the model and the index (building it first if allowed)."""

    def __init__(self, config: Config):
        self.config = config
        self.embedder = self._embedder(config.backend or DEFAULT_BACKEND, threads=None)
        self.reader = None if config.reader == "none" else Reader(
            MODELS_DIR if config.reader == "onnx" else Path(config.reader).expanduser())
        self._index: LoadedIndex | None = None
        self._lock = threading.Lock()
        self._checked = 0.0
        self._reloading = threading.Lock()  # held while a new build loads in the background
        self._reloads = self._swapped = 0  # reloads started; the latest-started one whose result is serving
        self._failed: str | None = None
        self._ready = threading.Event()
        self._ready.set()
        self.startup_error: QAError | None = None  # what requests are told
        self.startup_exception: BaseException | None = None  # what the command line reports
        self._reader_loading = False  # set once the reader's load has been started (_load_reader_aside)
        self._request_threads = 0  # when set (serving), FAISS threads are set in every request's thread
        self._vocabulary: tuple[Callable[[], LoadedIndex | None], Vocabulary | None] = (lambda: None, None)

    def start(self, prepare: Callable[[], None], failed: Callable[[QAError], None]) -> threading.Thread:
        """Run prepare (bring the index up to date, load the model) in the background while the web page is
        already served; questions wait for it (up to STARTUP_WAIT_SECONDS). failed(error) is called if it fails."""
        self._ready.clear()

        def run() -> None:
            try:
                prepare()
            except QAError as e:
                self.startup_error, self.startup_exception = e, e
                failed(e)
            except Exception as e:  # OSError, UnicodeDecodeError...: the command line turns them into one line
                if not isinstance(e, (OSError, UnicodeDecodeError)):
                    log.exception("starting the assistant failed")
                self.startup_exception = e
                self.startup_error = QAError("the assistant could not start; the server log has the details")
                failed(self.startup_error)
            finally:
                self._ready.set()

        thread = threading.Thread(target=run, name="qa-startup", daemon=True)
        thread.start()
        return thread

    @property
    def starting(self) -> bool:
        """The start-up work (see start) is still running."""
        return not self._ready.is_set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.startup_error is None

    def wait_until_ready(self, seconds: float = STARTUP_WAIT_SECONDS) -> None:
        """Return once started (at once when not starting); NotReady after `seconds`, or the start-up error."""
        if threading.current_thread().name == "qa-startup":  # the start-up work itself
            return
        if not self._ready.wait(seconds):
            raise NotReady("The assistant is still starting (indexing the documents); please retry in a moment.")
        if self.startup_error is not None:
            raise self.startup_error

    def _embedder(self, backend: str, threads: int | None, device: str | None = None) -> Embedder:
        """An embedder for backend: on the GPU only for torch with --device cuda (or a build's, when given)."""
        device = device or ("cuda" if self.config.device == "cuda" and backend == "torch" else "cpu")
        return Embedder(self.config.model, backend=backend, encoder_dir=encoder_dir(self.config), threads=threads,
                        shared_dir=self.config.cache_dir / "encoders", device=device)

    def _embedder_for(self, backend: str) -> Embedder:
        """The current embedder when it runs `backend`, else a new one with the same threads."""
        embedder = self.embedder
        return embedder if embedder.backend == backend else self._embedder(backend, threads=embedder.threads)

    def _use_backend(self, backend: str) -> Embedder:
        """The embedder for `backend` (a build's encoder), put in place of the current one."""
        self.embedder = self._embedder_for(backend)
        return self.embedder

    def set_threads(self, n: int) -> None:
        """Threads per request for encoding and FAISS (1 when serving). FAISS's (OpenMP's) setting belongs to
        the thread that makes it, so it is made again in each request's thread."""
        set_threads(n)
        self._request_threads = n
        self.embedder.set_threads(n)
        if self.reader is not None:
            self.reader.set_threads(n)

    @property
    def min_score(self) -> float:
        """The abstention threshold: the configured one, else the fitted one of the answerer in use."""
        if self.config.min_score is not None:
            return self.config.min_score
        return self.reader.threshold if self.reader is not None else SCORER_MIN_SCORE

    def build(self, warn: Callable[[str], None], progress: bool = False, full: bool = False) -> BuildReport:
        backend = chosen_backend(self.config, notice=_stderr_line if progress else None)
        device = build_device(self.config.device) if backend == "torch" else "cpu"
        if self.config.device == "cuda" and backend != "torch":
            raise IndexMismatch(f"the index in {self.config.index_dir} uses the {backend} encoder, which runs on "
                                "the CPU only; rebuild it for the GPU with --backend torch, or use --device cpu")
        if device == "cuda" and not torch_sees_cuda():
            raise ModelUnavailable("--device cuda: torch cannot use a CUDA GPU here (torch.cuda.is_available() is "
                                   "false); install a CUDA build of torch for your GPU, or use --device cpu")
        if device == "cuda" and self.config.device != "cuda":  # the build alone runs on the GPU
            embedder = self._embedder("torch", threads=self._request_threads or None, device="cuda")
        else:
            embedder = self._use_backend(backend)
        report = build_index(self.config, embedder, warn, progress=progress, full=full)
        self.reload()
        return report

    def warm_up(self, build_if_missing: bool = False, warn: Callable[[str], None] = print,
                progress: bool = False) -> None:
        if build_if_missing and not index_exists(self.config):
            self.build(warn, progress=progress)
        self._load_reader_aside()
        self.index  # noqa: B018  (loads it)
        self.embedder.warm_up()
        if self.reader is not None:
            self.reader.warm_up()  # (waits for the load begun aside; a failed one is tried again here and raised)

    def reload(self) -> LoadedIndex:
        """Load the live build and the encoder it was built with, then switch both at once; a failure leaves
        the current pair serving."""
        with self._lock:
            self._reloads += 1
            mine = self._reloads
        loaded = load_index(self.config)
        embedder = self._embedder_for(loaded.manifest["backend"])
        if self._index is not None:  # serving: make it ready before it takes over
            embedder.warm_up()
        with self._lock:
            if mine > self._swapped:  # a reload started later loaded a build at least as new: keep that one
                self._index, self.embedder, self._swapped = loaded, embedder, mine
            return self._index

    def _current(self) -> tuple[LoadedIndex, Embedder]:
        """The index and its encoder, read together (a reload swaps both)."""
        self.index  # noqa: B018  (loads it, or picks up a newer build)
        if self._request_threads:
            set_faiss_threads(self._request_threads)
        with self._lock:
            return self._index, self.embedder

    def _pick_up_new_build(self) -> None:
        """Switch to a newer live build (another process's `qa index`), checked at most once a second. The new
        build loads on a background thread, one load at a time, while questions go on with the current one
        (questions already being answered keep the index they started with); a build that cannot be loaded
        leaves the current one serving."""
        now = time.monotonic()
        if now - self._checked < RELOAD_CHECK_SECONDS or self._reloading.locked():
            return
        self._checked = now
        try:
            live = live_build_id(self.config)
        except QAError as e:  # a store that cannot be reached right now: keep serving what is loaded
            log.warning("cannot check for a new index build: %s", e)
            return
        if live is None or live == self._index.build_id or live == self._failed:
            return
        if self._reloading.acquire(blocking=False):
            try:
                threading.Thread(target=self._load_new_build, args=(live,), name="qa-reload", daemon=True).start()
            except RuntimeError:  # no thread to be had: check again later
                self._reloading.release()

    def _load_new_build(self, live: str) -> None:
        try:
            self.reload()
            log.info("serving the new index build %s", live)
        except QAError as e:
            self._failed = self._live_or(live)
            log.warning("keeping the previous index: the new build %s cannot be loaded: %s", self._failed, e)
        except Exception:  # noqa: BLE001  (a thread's error would only reach stderr)
            self._failed = self._live_or(live)
            log.exception("keeping the previous index: the new build %s failed to load", self._failed)
        finally:
            self._reloading.release()

    def _live_or(self, fallback: str) -> str:
        """The live build now (the one a failed reload tried), so that it is not tried again every second."""
        try:
            return live_build_id(self.config) or fallback
        except QAError:
            return fallback

    @property
    def index(self) -> LoadedIndex:
        self.wait_until_ready()
        if self._index is None:
            loaded = self.reload()
            if loaded.manifest["dimension"] != self.embedder.dimension:
                raise IndexMismatch(f"the index has dimension {loaded.manifest['dimension']} but model "
                                    f"{self.config.model!r} gives {self.embedder.dimension}; rebuild it with: "
                                    f"{rebuild_command(self.config)}")
        else:
            self._pick_up_new_build()
        return self._index

    def collection(self, examples: tuple[str, ...] = ()) -> Collection:
        """The loaded collection's name and size, with example questions (the given ones, else from its
        headings)."""
        index, _ = self._current()
        name = self.config.data_dir.name or str(self.config.data_dir)
        if not examples:
            store = index.store
            chunks = getattr(store, "chunks", {})  # a remote store (Milvus) offers no cheap listing: no examples
            examples = heading_examples([(c.source, c.section) for c in itertools.islice(chunks.values(), 5000)])
        return Collection(name=name, files=int(index.manifest.get("file_count", 0)),
                          chunks=int(index.manifest.get("chunk_count", 0)), examples=examples)

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        query, _ = clean_question(query, self.config.max_question_chars)
        k = self.config.top_k if k is None else k
        if not 1 <= k <= MAX_K:
            raise BadQuestion(f"k must be between 1 and {MAX_K}, got {k}.")
        index, embedder = self._current()
        return hybrid_search(index.store, index.lexical, embedder, query, k)

    def _load_reader_aside(self) -> None:
        """On warming up or the first question: load the reader in a thread of its own while the index and the
        encoder load (a fresh `qa ask` or server start waits for the longer of the two, not their sum). A failure
        there is raised by the next warm_up or read."""
        if self.reader is not None and not self._reader_loading:
            self._reader_loading = True
            # not a daemon: a process that exits (a question that failed fast) waits for the load rather than
            # tearing ONNX Runtime down in the middle of it
            threading.Thread(target=self._try_reader, name="qa-reader").start()

    def _try_reader(self) -> None:
        try:
            self.reader.warm_up()
        except Exception:  # the read that needs it loads it again and raises the one clear error
            pass

    def vocabulary(self, index: LoadedIndex) -> Vocabulary | None:
        """The terms of the index's BM25 (to tell the names a question uses that the documents never mention);
        None for a Milvus server's BM25, which lists none, or when the check is off (config.check_names)."""
        if not self.config.check_names:
            return None
        held, vocabulary = self._vocabulary  # a weak reference to the index it is for: a replaced index is freed
        if held() is not index:
            terms = getattr(index.lexical, "terms", None)
            vocabulary = Vocabulary(terms()) if terms is not None else None
            self._vocabulary = (weakref.ref(index), vocabulary)
        return vocabulary

    def ask(self, question: str, history: list | None = None, k: int | None = None) -> Answer:
        """An answer citing the documents. history (earlier turns) lets a follow-up refer back."""
        question, notice = clean_question(question, self.config.max_question_chars)
        if k is not None and not 1 <= k <= MAX_K:
            raise BadQuestion(f"k must be between 1 and {MAX_K}, got {k}.")
        query = with_context(question, history or [])
        self._load_reader_aside()
        index, embedder = self._current()
        store = index.store
        hits = hybrid_search(store, index.lexical, embedder, query, k or self.config.top_k)
        return compose_answer(question, hits, embedder, store, self.min_score, notice=notice, query=query,
                              reader=self.reader, vocabulary=self.vocabulary(index))
