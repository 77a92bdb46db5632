"""Exporting the embedding model's transformer to ONNX, optionally with int8 weights, once per index folder.

torch.onnx.export of the transformer (token ids and mask in, token vectors out: pooling stays in
embedding.py, identical for every backend), then for onnx-int8 onnxruntime's dynamic quantization of
the MatMul weights to int8, per output channel. Needs torch; the exported file does not.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
OUTPUT = "last_hidden_state"


STALE_SECONDS = 3600


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
