"""What AMX gives the int8 exports: the Detoxify ``original`` architecture (generated weights)
on ONNX Runtime int8, batch 32, one thread, in child processes that alternate between AMX
allowed (ONNX Runtime asks Linux for the tiles itself) and AMX refused (a seccomp filter
makes ``arch_prctl(ARCH_REQ_XCOMP_PERM)`` fail with EPERM, so MLAS falls back to its
AVX-512 VNNI kernels). Linux on x86-64 only. Prints JSON.

    flock /tmp/llmpulse-heavy.lock uv run python benchmarks/scoring_amx.py [--models DIR] [--rounds 2]

``--models`` reuses a models folder with ``detoxify-original`` exported (as
``scoring_models.py`` makes in its temporary folder); without it one is generated.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_ARCH_REQ_XCOMP_PERM = 0x1023
_SYS_ARCH_PRCTL = 158
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_AUDIT_ARCH_X86_64 = 0xC000003E


def refuse_amx() -> None:
    """Install a seccomp filter in this process (and what it execs) under which
    ``arch_prctl(ARCH_REQ_XCOMP_PERM, ...)`` fails with EPERM; every other call is allowed."""

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    ld, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    allow, eperm = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    code = [(ld, 0, 0, 4), (jeq, 0, 5, _AUDIT_ARCH_X86_64),  # seccomp_data.arch
            (ld, 0, 0, 0), (jeq, 0, 3, _SYS_ARCH_PRCTL),  # seccomp_data.nr
            (ld, 0, 0, 16), (jeq, 0, 1, _ARCH_REQ_XCOMP_PERM),  # seccomp_data.args[0], low half
            (ret, 0, 0, eperm), (ret, 0, 0, allow)]
    filters = (Filter * len(code))(*[Filter(*c) for c in code])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.prctl(
            _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(Program(len(code), filters))):
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


def measure(model_dir: str, texts: int, amx: bool) -> dict[str, object]:
    """In this process: int8 texts/s (best of 3), and whether it holds AMX tiles."""
    if not amx:
        refuse_amx()
    from model_bench import mixed_texts

    from llmpulse.processors.models.runtime import OnnxTextModel, amx_tiles

    mixed = mixed_texts(texts)
    model = OnnxTextModel(model_dir, precision="int8", threads=1, batch_size=32)
    model.run(mixed[:2])
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        model.run(mixed)
        best = min(best, time.perf_counter() - start)
    return {"texts_per_s": round(texts / best, 1), "amx_tiles": amx_tiles()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", help="a models folder with detoxify-original exported")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two children")
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--child", choices=["amx", "no-amx"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.models, args.texts, args.child == "amx")))
        return
    with tempfile.TemporaryDirectory() as tmp:
        from model_bench import models_folder

        root = models_folder(args.models, tmp, names=["detoxify-original"])
        runs: dict[str, list[dict[str, object]]] = {"amx": [], "no-amx": []}
        for _ in range(args.rounds):
            for child in runs:
                done = subprocess.run([sys.executable, __file__, "--child", child, "--texts", str(args.texts),
                                       "--models", str(root / "detoxify-original")],
                                      capture_output=True, text=True, check=True)
                runs[child].append(json.loads(done.stdout.strip().splitlines()[-1]))
    rates = {k: [float(r["texts_per_s"]) for r in v] for k, v in runs.items()}  # type: ignore[arg-type]
    print(json.dumps({
        "benchmark": "scoring_amx", "model": "Detoxify original architecture, ONNX int8, batch 32, 1 thread",
        "texts": args.texts, "load_average_1m": round(os.getloadavg()[0], 2),
        "texts_per_s": rates, "amx_tiles": {k: [r["amx_tiles"] for r in v] for k, v in runs.items()},
        "amx_to_no_amx_best": round(max(rates["amx"]) / max(rates["no-amx"]), 2)}, indent=1))


if __name__ == "__main__":
    main()
