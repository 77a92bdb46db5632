"""The reader: a small transformer that reads a question together with a candidate answer unit and says how
likely the unit answers it, and where in the unit the answer lies (trained by train_reader.py, shipped in
qa/models/ with its model card).

The shipped ONNX file holds the transformer from word vectors on; the word vectors themselves are the packaged
all-MiniLM-L6-v2's (frozen while training), looked up here. Loading checks the file's sha256 against
qa/models/reader.json; a missing or damaged file is one ReaderUnavailable error naming the fix. Loaded lazily,
on the first question; one thread per call unless set_threads says otherwise.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import QAError

MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL_FILE = "reader.onnx"
INPUTS = ["word_vectors", "attention_mask", "token_type_ids"]
OUTPUTS = ["answer_logit", "start_logits", "end_logits"]
MAX_ANSWER_TOKENS = 30
MAX_WINDOWS = 2  # a long unit (a lead-in with its code) is read in up to this many windows
WINDOW_OVERLAP = 16  # word pieces each window repeats of the one before
FIX = "restore it with `git checkout qa/models`, retrain it with `python -m qa.train_reader`, or answer " \
      "without it: --reader none (QA_READER=none)"


class ReaderUnavailable(QAError):
    """The reader model file is missing or damaged."""
    public_message = "The answer reader cannot be loaded; the server's log says what to do."


def manifest_path(folder: Path) -> Path:
    return folder / "reader.json"


CLS, SEP = 101, 102  # the packaged model's [CLS] and [SEP] ids


def pair_row(question_ids: list[int], unit_ids: list[int], max_tokens: int) -> tuple[list[int], int, int]:
    """What the reader reads, as training made it: [CLS] question [SEP] unit [SEP] within max_tokens (the question
    cut to a third, the unit to what is left). Returns the ids, where the unit starts and how many of its pieces fit;
    type ids are 0 before that start and 1 from it."""
    q = question_ids[:max_tokens // 3]
    kept = max(0, min(len(unit_ids), max_tokens - len(q) - 3))
    return [CLS] + q + [SEP] + unit_ids[:kept] + [SEP], len(q) + 2, kept


@dataclass(frozen=True)
class Reading:
    probability: float  # that the unit answers the question
    start: int  # the answer's span inside the unit's text (character offsets); -1, -1 when none stands out
    end: int


class Reader:
    def __init__(self, folder: Path = MODELS_DIR, threads: int = 1, model_path: Path | None = None):
        self.folder = folder
        self.model_path = model_path  # the packaged embedding model (tokenizer, word vectors); None: found on load
        self.threads = threads
        self._lock = threading.Lock()
        self._session = None
        self._manifest: dict | None = None
        self.fitted: dict[str, float] = {}  # threshold and weight, from the manifest (bench/fit_reader.py sets them)

    @property
    def threshold(self) -> float:
        """The answer score below which answers abstain, fitted on the threshold part (bench/fit_reader.py)."""
        return self._fitted("threshold")

    @property
    def weight(self) -> float:
        """The reader's share of a unit's answer score (the rest is the term and vector score), fitted likewise."""
        return self._fitted("weight")

    def _fitted(self, name: str) -> float:
        if name not in self.fitted:
            try:
                self.fitted[name] = float(self.manifest()[name])
            except (KeyError, TypeError, ValueError):
                raise ReaderUnavailable(f"the reader's manifest {manifest_path(self.folder)} names no {name}; "
                                        f"{FIX}") from None
        return self.fitted[name]

    def manifest(self) -> dict:
        """reader.json (read once): how the model was made, its sha256, the fitted weight and threshold."""
        if self._manifest is None:
            path = manifest_path(self.folder)
            if not path.is_file():
                raise ReaderUnavailable(f"the reader model {self.folder / MODEL_FILE} is missing; {FIX}")
            try:
                self._manifest = dict(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, TypeError, OSError):
                raise ReaderUnavailable(f"the reader's manifest {path} cannot be read; {FIX}") from None
        return self._manifest

    def set_threads(self, n: int) -> None:
        with self._lock:
            if n != self.threads:
                self.threads = n
                self._session = None

    def warm_up(self) -> None:
        with self._lock:
            if self._session is None:
                self._load()

    def _load(self) -> None:
        import onnxruntime as ort
        from safetensors import safe_open

        from .chunking import load_tokenizer

        file = self.folder / MODEL_FILE
        if not file.is_file():
            raise ReaderUnavailable(f"the reader model {file} is missing; {FIX}")
        info = self.manifest()
        if hashlib.sha256(file.read_bytes()).hexdigest() != info.get("sha256"):
            raise ReaderUnavailable(f"the reader model {file} is damaged (its sha256 is not the one in "
                                    f"{manifest_path(self.folder).name}); {FIX}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ReaderUnavailable(f"the reader model {file} cannot be loaded ({str(e)[:200]}); {FIX}") from None
        if getattr(self, "_vectors", None) is None:
            if self.model_path is None:
                from .config import DEFAULT_MODEL
                from .embedding import resolve_model_path

                self.model_path = resolve_model_path(DEFAULT_MODEL)
            with safe_open(str(self.model_path / "model.safetensors"), "np") as f:
                key = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))
                self._vectors = f.get_tensor(key).astype(np.float32)
            self._tokenizer = load_tokenizer(self.model_path)
        self._max_tokens = int(info.get("max_tokens", 96))
        self._session = session

    def read(self, question: str, units: list[str]) -> list[Reading]:
        """One Reading per unit, in one batched call. A unit longer than the reader's window is read in up to
        MAX_WINDOWS windows (overlapping by WINDOW_OVERLAP pieces; what is past them is not read): its reading is the
        window that answers best."""
        if not units:
            return []
        self.warm_up()
        q = self._tokenizer.encode(question, add_special_tokens=False).ids
        encoded = self._tokenizer.encode_batch(units, add_special_tokens=False)
        windows = []  # (unit, first piece of the window, row, where the unit starts in it, pieces kept)
        for u, e in enumerate(encoded):
            first = 0
            for _ in range(MAX_WINDOWS):
                row, base, kept = pair_row(q, e.ids[first:], self._max_tokens)
                windows.append((u, first, row, base, kept))
                if first + kept >= len(e.ids) or kept <= WINDOW_OVERLAP:
                    break
                first += kept - WINDOW_OVERLAP
        ids = np.zeros((len(windows), max(len(w[2]) for w in windows)), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for r, (_, _, row, base, _) in enumerate(windows):
            ids[r, :len(row)] = row
            mask[r, :len(row)] = 1
            types[r, base:len(row)] = 1
        logit, starts, ends = self._session.run(OUTPUTS, {"word_vectors": self._vectors[ids],
                                                          "attention_mask": mask, "token_type_ids": types})
        best: dict[int, Reading] = {}
        for r, (u, first, _, base, kept) in enumerate(windows):
            e = encoded[u]
            probability = float(1 / (1 + np.exp(-logit[r])))
            s, t = _best_span(starts[r], ends[r])
            span = (-1, -1)
            if base <= s and t < base + kept:
                span = (_mnemonic_start(units[u], e.offsets[first + s - base]), e.offsets[first + t - base][1])
            if u not in best or probability > best[u].probability:
                best[u] = Reading(probability, *span)
        return [best[u] for u in range(len(units))]


_MNEMONIC_REST = re.compile(r"[A-Za-z]{1,2}\][a-z]")  # what follows the "[" of a mnemonic word: "f]ile"


def _mnemonic_start(text: str, piece: tuple[int, int]) -> int:
    """Where a span opening with this word piece starts: at the "[" of a mnemonic word ("[f]ile"), whose piece
    starts after it (the tokenizer drops the brackets, lexical.reading_plain_words)."""
    start, _ = piece  # the piece is "f]ile", or the letter alone ("g" of "[g]zip": the "]" then in no piece)
    return start - 1 if start > 0 and text[start - 1] == "[" and _MNEMONIC_REST.match(text, start) else start


def _best_span(starts: np.ndarray, ends: np.ndarray) -> tuple[int, int]:
    """The (start, end) word pieces with the highest summed logits, end not before start, at most
    MAX_ANSWER_TOKENS long."""
    n = len(starts)
    scores = starts[:, None] + ends[None, :]
    allowed = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), MAX_ANSWER_TOKENS)
    scores = np.where(allowed, scores, -np.inf)
    s, t = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return int(s), int(t)
