"""Exporting the embedding model's transformer to ONNX, optionally with int8 weights, once per machine, and
where the export lives.

torch.onnx.export of the transformer (token ids and mask in, token vectors out: pooling stays in
embedding.py, identical for every backend), then for onnx-int8 onnxruntime's dynamic quantization of
the MatMul weights to int8, per output channel. Needs torch; the exported file does not.

The export is made once into the machine's shared folder (Config.cache_dir/encoders), named by the model and
its weights (encoder_file). Each index folder holds a hard link to it (no second copy on disk), so that the
folder still runs when moved to another machine or when the shared folder is deleted; a copy only where no
link can be made (another file system, a read-only shared folder). A build records the export's sha256
(export_sha256) in its manifest.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
OUTPUT = "last_hidden_state"


STALE_SECONDS = 3600


def _weights_fingerprint(path: Path) -> str:
    """Name, size and the sha256 of the first and last MiB of a weights file: stable across reinstalls and
    copies (unlike its modification time), different for other weights, and quick to compute."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return f"{path.name}:{size}:{digest.hexdigest()}"


def encoder_file(encoder_dir: Path, model: str, model_path: Path, backend: str) -> Path:
    """Where the ONNX export of `model` for `backend` is kept: named by the model and its weights (see
    _weights_fingerprint), so other weights are exported again and the same weights never are."""
    weights = sorted(p for p in model_path.glob("*") if p.suffix in (".safetensors", ".bin"))
    facts = [model] + [_weights_fingerprint(p) for p in weights]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[-60:] or "model"
    digest = hashlib.sha256("\0".join(facts).encode("utf-8")).hexdigest()[:12]
    return encoder_dir / f"{slug}-{digest}-{backend}.onnx"


def export_sha256(file: Path) -> str:
    """The sha256 of an exported file (worked out once per file version in this process)."""
    st = file.stat()
    return _sha256(str(file), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: str, *_version) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def link_or_copy(source: Path, target: Path, copy: bool = True) -> str:
    """Put `source` at `target` under a temporary name, then rename (a reader never sees half a file): a hard
    link where the file system allows, else (copy=True) a copy. Returns "link" or "copy"; OSError when neither
    can be made."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}-{os.getpid()}-{time.monotonic_ns()}.tmp.onnx")
    try:
        try:
            os.link(source, tmp)
            how = "link"
        except OSError:  # another file system, links refused, or too many links: a copy
            if not copy:
                raise
            shutil.copyfile(source, tmp)
            how = "copy"
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return how


def _same_bytes_apart(a: Path, b: Path) -> bool:
    """Two files on one file system with equal bytes but not one file (a link between them would free one)."""
    x, y = a.stat(), b.stat()
    return x.st_dev == y.st_dev and x.st_ino != y.st_ino and x.st_size == y.st_size and \
        export_sha256(a) == export_sha256(b)


def placed_export(model_path: Path, model: str, backend: str, encoder_dir: Path, shared_dir: Path | None) -> Path:
    """The ONNX file to run for an index whose exports live in encoder_dir: there already (an index moved here
    also puts it in the shared folder, for the next index; a copy of the shared file becomes a link to it),
    else linked or copied from the shared folder,
    exported into it first when missing. A read-only shared folder: exported beside the index; a read-only
    index folder: the shared file itself."""
    file = encoder_file(encoder_dir, model, model_path, backend)
    shared = encoder_file(shared_dir, model, model_path, backend) if shared_dir else None
    int8 = backend == "onnx-int8"
    if shared is None or shared == file:
        return file if file.is_file() else export_onnx(model_path, file, int8=int8)
    if file.is_file():
        try:
            if not shared.is_file():
                link_or_copy(file, shared)
            elif _same_bytes_apart(file, shared):  # a copy made before links (or by a copying move): linked now
                link_or_copy(shared, file, copy=False)
        except OSError:
            pass  # a read-only folder: this index runs its own all the same
        return file
    if not shared.is_file():
        try:
            export_onnx(model_path, shared, int8=int8)
        except OSError:  # a read-only shared folder: export beside the index only
            return export_onnx(model_path, file, int8=int8)
    try:
        link_or_copy(shared, file)
    except OSError:  # a read-only index folder: run the shared export
        return shared
    return file


def _remove_stale(folder: Path) -> None:
    """Temporary files of exports that were killed (an hour old: a live export takes well under a minute)."""
    for leftover in folder.glob(".*.tmp.onnx"):
        try:
            if time.time() - leftover.stat().st_mtime > STALE_SECONDS:
                leftover.unlink()
        except OSError:
            pass


def export_onnx(model_path: Path, target: Path, int8: bool) -> Path:
    """Write the transformer of the model in `model_path` to `target` (a .onnx file); returns target.
    Written beside the target under a temporary name and renamed, so a reader never sees half a file."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target.parent)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".tmp.onnx")
    os.close(fd)
    tmp = Path(name)
    fp32 = tmp.with_name(tmp.name.replace(".tmp.onnx", "-fp32.tmp.onnx")) if int8 else tmp
    model = AutoModel.from_pretrained(str(model_path)).eval()

    class TokenVectors(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = torch.ones((2, 16), dtype=torch.int64)
    try:
        import warnings

        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(TokenVectors().eval(), (sample, sample, torch.zeros_like(sample)), str(fp32),
                              input_names=INPUTS, output_names=[OUTPUT], opset_version=17, dynamo=False,
                              dynamic_axes={name: {0: "batch", 1: "tokens"} for name in INPUTS + [OUTPUT]})
        if int8:
            import logging

            root = logging.getLogger()
            level, handlers = root.level, list(root.handlers)
            try:  # importing it calls logging.basicConfig; quantizing logs a pre-processing hint: keep both quiet
                from onnxruntime.quantization import QuantType, quantize_dynamic

                root.setLevel(logging.ERROR)
                quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                                 op_types_to_quantize=["MatMul"])
            finally:
                root.setLevel(level)
                root.handlers[:] = handlers
        os.replace(tmp, target)
    finally:
        for leftover in (fp32, tmp):
            leftover.unlink(missing_ok=True)
    return target
