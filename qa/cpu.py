"""What suits this machine: the encoder for a new index when none is asked for, as far as the CPU's features
tell (calibration.py times the two where they do not), and whether builds run on a CUDA GPU.

int8 matrix products are fast only with int8 dot-product instructions: AVX-512 VNNI, AVX-VNNI or AMX on
x86, the dot-product extension on ARM. There the int8 ONNX export runs about 3x faster than float32 (and
3x torch). Elsewhere (AVX2 only) it depends on the CPU: measured no faster than float32 on one, 1.5x faster on
another, and always slightly less accurate; there float32 is the provisional choice, and a new index gets the one
calibration.py times faster. Both ONNX exports run faster than torch (bench/bench_encoders.py prints the figures).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

INT8_FEATURES = {"avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI", "amx_int8": "AMX", "asimddp": "ARM dot product"}


@dataclass(frozen=True)
class BackendChoice:
    backend: str
    reason: str  # one clause, e.g. "this CPU has AVX-512 VNNI: int8 runs about 3x faster than float32"


def _cpuinfo_field(names: tuple[str, ...]) -> str:
    """The value of the first /proc/cpuinfo line naming one of `names` ("" where there is none or no file)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(names):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.cache
def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC", ...), or "unknown CPU" where /proc/cpuinfo does not say."""
    return _cpuinfo_field(("model name", "Model", "CPU part")) or "unknown CPU"


@functools.cache
def cpu_features() -> frozenset[str]:
    """The feature flags of this machine's CPU (empty where /proc/cpuinfo cannot be read)."""
    return frozenset(_cpuinfo_field(("flags", "Features")).split())


def choose_backend(features: frozenset[str]) -> BackendChoice:
    found = [name for flag, name in INT8_FEATURES.items() if flag in features]
    if found:
        return BackendChoice("onnx-int8", f"this CPU has {found[0]}: int8 runs about 3x faster than float32")
    if not features:
        return BackendChoice("onnx", "this CPU's features are unknown: float32 ONNX, which is fast everywhere")
    return BackendChoice("onnx", "this CPU has no int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX): "
                         "float32 unless int8 is timed clearly faster (calibration.py)")


@functools.cache
def machine_backend() -> BackendChoice:
    """The encoder the CPU's features point to (calibration.new_index_choice has the last word where it is not
    int8)."""
    return choose_backend(cpu_features())


@functools.cache
def cuda_available() -> bool:
    """Whether torch can use a CUDA GPU here (torch is imported only where an NVIDIA driver is installed)."""
    if not (Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()):
        return False
    return torch_sees_cuda()


def build_device(device: str) -> str:
    """Where a build runs its encoder: "cuda" when asked for, or for "auto" where a CUDA GPU is usable."""
    return "cuda" if device == "cuda" or (device == "auto" and cuda_available()) else "cpu"


def torch_sees_cuda() -> bool:
    """torch.cuda.is_available(), without the driver-file shortcut of cuda_available (for an explicit --device
    cuda: WSL2, for one, has a GPU but no /dev/nvidia0)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a CPU-only torch, or a broken driver: no GPU
        return False
