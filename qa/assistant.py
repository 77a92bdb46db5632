"""The assistant: one loaded index and one model, answering search and ask requests for the CLI and the web."""
from __future__ import annotations

import threading
import unicodedata
from typing import Callable

from .answering import compose_answer
from .config import Config
from .embedding import Embedder
from .errors import BadQuestion, IndexMismatch
from .indexing import BuildReport, LoadedIndex, build_index, index_exists, load_index, rebuild_command
from .records import Answer, Hit
from .retrieval import search as dense_search

MAX_K = 100


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


class Assistant:
    """Cheap to construct; warm_up() loads the model and the index (building it first if allowed)."""

    def __init__(self, config: Config):
        self.config = config
        self.embedder = Embedder(config.model)
        self._index: LoadedIndex | None = None
        self._lock = threading.Lock()

    def build(self, warn: Callable[[str], None], progress: bool = False) -> BuildReport:
        report = build_index(self.config, self.embedder, warn, progress=progress)
        self.reload()
        return report

    def warm_up(self, build_if_missing: bool = False, warn: Callable[[str], None] = print,
                progress: bool = False) -> None:
        if build_if_missing and not index_exists(self.config):
            self.build(warn, progress=progress)
        self.index  # noqa: B018  (loads it)
        self.embedder.warm_up()

    def reload(self) -> LoadedIndex:
        loaded = load_index(self.config)
        with self._lock:
            self._index = loaded
        return loaded

    @property
    def index(self) -> LoadedIndex:
        if self._index is None:
            loaded = self.reload()
            if loaded.manifest["dimension"] != self.embedder.dimension:
                raise IndexMismatch(f"the index has dimension {loaded.manifest['dimension']} but model "
                                    f"{self.config.model!r} gives {self.embedder.dimension}; rebuild it with: "
                                    f"{rebuild_command(self.config)}")
        return self._index

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        query, _ = clean_question(query, self.config.max_question_chars)
        k = self.config.top_k if k is None else k
        if not 1 <= k <= MAX_K:
            raise BadQuestion(f"k must be between 1 and {MAX_K}, got {k}.")
        return dense_search(self.index.store, self.embedder, query, k)

    def ask(self, question: str) -> Answer:
        question, notice = clean_question(question, self.config.max_question_chars)
        store = self.index.store
        hits = dense_search(store, self.embedder, question, self.config.top_k)
        return compose_answer(question, hits, self.embedder, store, self.config.min_score, notice=notice)
