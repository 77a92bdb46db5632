"""Settings: one frozen Config, built once from CLI flags and QA_* variables, passed in explicitly.

The library never reads os.environ; the entry points (cli.py, app.py) hand it the environment.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping

from .cpu import machine_backend

CHECKOUT = Path(__file__).resolve().parent.parent
IN_CHECKOUT = (CHECKOUT / "app.py").is_file() and (CHECKOUT / "pyproject.toml").is_file()  # the source folder
# (also when installed from it with pip -e); never site-packages
# Folders are found beside the code in a checkout, and in the current folder for an installed `qa` command.
ROOT = CHECKOUT if IN_CHECKOUT else Path.cwd()
DEFAULT_MODEL = "all-MiniLM-L6-v2"

# QA_* variable -> Config field
ENV_FIELDS = {
    "QA_DATA": "data_dir",
    "QA_INDEX": "index_dir",
    "QA_MODEL": "model",
    "QA_HOST": "host",
    "QA_PORT": "port",
    "QA_TOP_K": "top_k",
    "QA_MIN_SCORE": "min_score",
    "QA_ALLOWED_ORIGINS": "allowed_origins",
    "QA_MAX_CONCURRENT": "max_concurrent",
    "QA_CACHE": "cache_dir",
    "QA_ADMIN_TOKEN": "admin_token",
    "QA_BACKEND": "backend",
    "QA_INDEX_TYPE": "index_type",
    "QA_FLAT_LIMIT": "flat_limit",
    "QA_STORE": "store",
    "QA_MILVUS_URI": "milvus_uri",
    "QA_MILVUS_TOKEN": "milvus_token",
    "QA_ENGINE": "engine",
    "QA_RAY_ADDRESS": "ray_address",
    "QA_READER": "reader",
    "QA_CHECK_NAMES": "check_names",
    "QA_DEVICE": "device",
    "QA_ACCESS_TOKEN": "access_token",
    "QA_PUBLIC_WIDGET": "public_widget",
}
READERS = ("onnx", "none")
ENGINES = ("local", "ray")
STORES = ("faiss", "milvus")
BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_BACKEND = machine_backend().backend  # the encoder the CPU's features point to (cpu.py), before any index
# is loaded; a new index gets indexing.new_index_backend's (timed by calibration.py where the features do not settle it)
INDEX_TYPES = ("auto", "flat", "ivf")
DEVICES = ("auto", "cpu", "cuda")
MIN_TOKEN_CHARS = 12  # a shorter QA_ACCESS_TOKEN or QA_ADMIN_TOKEN is refused: it could be guessed
_ORIGIN = re.compile(r"^https?://[^/\s]+$")


@dataclass(frozen=True)
class Config:
    data_dir: Path = ROOT / "data"
    index_dir: Path = ROOT / "index"
    cache_dir: Path = ROOT / ".cache"  # indexes built by `qa eval` (named by content hash), shared ONNX exports
    model: str = DEFAULT_MODEL  # the packaged model's name, a local model folder, or a cached hub name
    host: str = "127.0.0.1"
    port: int = 7860
    chunk_tokens: int = 200  # word pieces per chunk; the model reads at most 254 (+2 special tokens), and a chunk
    # opening with a unit longer than this (a lead-in with its code) takes it whole when it fits those 254
    overlap_tokens: int = 40  # whole trailing sentences, up to this many word pieces, repeat in the next chunk
    top_k: int = 5  # passages read when answering; also the default k of search
    min_score: float | None = None  # answer confidence (0-1) below which it abstains; None: the fitted threshold
    # of the answerer in use (the reader's, in qa/models/reader.json; SCORER_MIN_SCORE without it)
    reader: str = "onnx"  # onnx: the shipped reader (qa/models) chooses the answer and decides abstention; none:
    # term and vector scores do; or a folder holding another reader.onnx and reader.json (python -m qa.train_reader)
    check_names: bool = True  # look the question's names up in the documents (unmentioned.py): an identifier they
    # never mention ("... with NTLM?") refuses it, saying so; a capitalised word they never mention is named in a notice
    max_question_chars: int = 2000
    threads: int = 1  # torch/FAISS threads per request when serving
    allowed_origins: str = "*"  # comma-separated origins that may call the API and frame the widget; * = any
    admin_token: str = field(default="", repr=False)  # enables uploads (web panel, POST /api/documents)
    access_token: str = field(default="", repr=False)  # set: the app needs it (a login, or Authorization: Bearer)
    public_widget: bool = False  # with access_token: /widget.js, /embed and the embed's own asking route stay public
    max_concurrent: int = 4  # questions answered at once by the HTTP API; more wait briefly, then get 429
    backend: str = ""  # encoder for building: torch, onnx, onnx-int8; "" keeps the index's (when new: the one
    # chosen for the machine, indexing.new_index_backend)
    device: str = "auto"  # where builds run the encoder: auto (a CUDA GPU when torch can use one, with the torch
    # encoder), cpu, or cuda (then questions are encoded on it too; with auto and cpu they stay on the CPU)
    index_type: str = "auto"  # FAISS index: flat (exact), ivf (inverted lists), auto: flat up to flat_limit
    flat_limit: int = 200_000  # chunks up to which auto keeps exact search
    store: str = "faiss"  # faiss: files in index_dir; milvus: a collection named after index_dir on milvus_uri
    milvus_uri: str = ""  # http://host:19530, a Zilliz Cloud URI, or a Milvus Lite server
    milvus_token: str = field(default="", repr=False)  # user:password, or a Zilliz Cloud API key
    engine: str = "local"  # how builds read, chunk and embed: local (this process) or ray (a Ray cluster)
    ray_address: str = ""  # "" starts a local Ray on 127.0.0.1; "auto" or ray://host:10001 joins a cluster

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip())


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


def _convert(name: str, value):
    kind = {f.name: f.type for f in fields(Config)}[name]
    try:
        if kind in ("Path", Path):
            return Path(value).expanduser().resolve()
        if kind in ("int", int):
            return int(value)
        if kind in ("float", float, "float | None"):
            return float(value)
        if kind in ("bool", bool):
            if isinstance(value, bool):
                return value
            if str(value).strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off", ""):
                raise ValueError
            return str(value).strip().lower() in ("1", "true", "yes", "on")
    except ValueError:
        what = "1 or 0" if kind in ("bool", bool) else "a number"
        raise ConfigError(f"{name} must be {what}, got {value!r}") from None
    return str(value)


def build_config(environ: Mapping[str, str], **flags) -> Config:
    """Config from QA_* variables in `environ`, then flags (flags whose value is None are unset)."""
    values = {}
    for var, name in ENV_FIELDS.items():
        if environ.get(var):
            values[name] = _convert(name, environ[var])
    for name, value in flags.items():
        if value is not None:
            values[name] = _convert(name, value)
    config = replace(Config(), **values)
    if not 1 <= config.port <= 65535:
        raise ConfigError(f"port must be between 1 and 65535, got {config.port}")
    if not 1 <= config.top_k <= 100:
        raise ConfigError(f"k must be between 1 and 100, got {config.top_k}")
    if config.min_score is not None and not 0.0 <= config.min_score <= 1.0:
        raise ConfigError(f"min_score must be between 0 and 1, got {config.min_score}")
    if not 1 <= config.max_concurrent <= 256:
        raise ConfigError(f"max_concurrent must be between 1 and 256, got {config.max_concurrent}")
    if config.backend not in ("",) + BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {config.backend!r}")
    if config.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {config.device!r}")
    if config.device == "cuda" and config.backend not in ("", "torch"):
        raise ConfigError(f"--device cuda runs the torch encoder, not {config.backend}; drop --backend or use "
                          "--device cpu")
    if config.index_type not in INDEX_TYPES:
        raise ConfigError(f"index type must be one of {', '.join(INDEX_TYPES)}, got {config.index_type!r}")
    if config.store not in STORES:
        raise ConfigError(f"store must be one of {', '.join(STORES)}, got {config.store!r}")
    if config.store == "milvus" and not config.milvus_uri:
        raise ConfigError("the milvus store needs --milvus-uri (or QA_MILVUS_URI), e.g. http://127.0.0.1:19530")
    if config.reader not in READERS and not Path(config.reader).expanduser().is_dir():
        raise ConfigError(f"reader must be {' or '.join(READERS)} or a folder holding reader.onnx, got "
                          f"{config.reader!r}")
    if config.engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {config.engine!r}")
    for wanted, module, extra in ((config.store == "milvus", "pymilvus", "milvus"), (config.engine == "ray", "ray", "ray")):
        if wanted and importlib.util.find_spec(module) is None:
            raise ConfigError(f"--{'store milvus' if extra == 'milvus' else 'engine ray'} needs {module}: "
                              f"pip install 'qa[{extra}]' (or -r requirements.txt)")
    for name, token in (("access", config.access_token), ("admin", config.admin_token)):
        if token and len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(f"the {name} token must have at least {MIN_TOKEN_CHARS} characters (QA_"
                              f"{name.upper()}_TOKEN): a shorter one could be guessed")
    if config.flat_limit < 0:
        raise ConfigError(f"flat limit must be 0 or more, got {config.flat_limit}")
    bad = [o for o in config.origins if o != "*" and not _ORIGIN.match(o)]
    if bad or not config.origins:
        raise ConfigError(f"allowed origins must be * or a comma-separated list like https://example.com, "
                          f"got {config.allowed_origins!r}")
    return config
