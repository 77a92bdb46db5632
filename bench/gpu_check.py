"""The GPU encoder path on a CUDA machine, as one short prepared run (issue 18): the project's own Embedder, torch
backend, on cuda against the CPU, over a few thousand real chunk texts.

    python bench/gpu_check.py prepare FOLDER [--texts 3000]   # here: writes bench/out/gpu/ (about 45 MB)
    python bench/gpu_check.py run [--device cuda]             # there, with bench/out/gpu carried along

prepare: the packaged model's weights in float16 (to travel light), its tokenizer and settings, and the
encoder inputs of the first --texts chunks that `qa index` makes of FOLDER. run: the weights back in float32,
then Embedder(backend="torch", device=cuda).encode against device=cpu on the same texts: the largest absolute
difference of any vector component (target < 1e-4), and texts/s on each. Needs torch, transformers and
tokenizers only (no FAISS, no ONNX).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
OUT = Path(__file__).resolve().parent / "out" / "gpu"


def prepare(folder: Path, count: int) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from qa.chunking import chunk_document, encoder_input, load_tokenizer
    from qa.config import Config
    from qa.embedding import resolve_model_path
    from qa.reading import read_corpus

    config = Config()
    model = resolve_model_path(config.model)
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "model").mkdir(parents=True)
    for f in model.iterdir():
        if f.is_file() and f.suffix != ".safetensors" and f.stat().st_size < 20 * 2**20:
            shutil.copy(f, OUT / "model" / f.name)
    weights = load_file(str(model / "model.safetensors"))
    save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()},
              str(OUT / "model" / "model.safetensors"))
    tokenizer = load_tokenizer(model)
    texts: list[str] = []
    for doc in read_corpus(folder, lambda m: None):
        texts += [encoder_input(c) for c in chunk_document(doc, tokenizer, config.chunk_tokens, config.overlap_tokens)]
        if len(texts) >= count:
            break
    (OUT / "texts.json").write_text(json.dumps(texts[:count]), encoding="utf-8")
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT}: {min(count, len(texts))} texts, {size / 2**20:.1f} MB")


def run(device: str) -> None:
    import numpy as np
    import torch
    from transformers import AutoModel

    from qa.embedding import Embedder

    texts = json.loads((OUT / "texts.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:  # the weights back in float32, as the index's encoder runs them
        for f in (OUT / "model").iterdir():
            if f.suffix != ".safetensors":
                shutil.copy(f, Path(tmp) / f.name)
        AutoModel.from_pretrained(str(OUT / "model"), dtype=torch.float32).save_pretrained(tmp)
        results = {}
        for where in ("cpu", device):
            embedder = Embedder(model=tmp, backend="torch", device=where)
            embedder.encode(texts[:64])  # loads the model, warms the kernels
            t = time.perf_counter()
            results[where] = (embedder.encode(texts), time.perf_counter() - t)
    (cpu, cpu_s), (gpu, gpu_s) = results["cpu"], results[device]
    name = torch.cuda.get_device_name(0) if device == "cuda" else device
    print(f"{len(texts)} chunk texts; torch {torch.__version__}; {name}")
    print(f"cpu  {len(texts) / cpu_s:8.1f} texts/s ({torch.get_num_threads()} threads)")
    print(f"{device} {len(texts) / gpu_s:8.1f} texts/s = {cpu_s / gpu_s:.1f}x the CPU")
    print(f"largest difference of a vector component: {np.abs(cpu - gpu).max():.2e} (target < 1e-4)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    prep = sub.add_parser("prepare")
    prep.add_argument("folder", type=Path)
    prep.add_argument("--texts", type=int, default=3000)
    go = sub.add_parser("run")
    go.add_argument("--device", default="cuda")
    args = p.parse_args()
    if args.step == "prepare":
        prepare(args.folder.resolve(), args.texts)
    else:
        run(args.device)


if __name__ == "__main__":
    main()
