"""ONNX Runtime asks Linux for AMX tiles itself on a CPU that has them, and ``amx_tiles``
reads the permission back: true on an AMX CPU once an int8 matrix product has run, false
on one without AMX."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from llmpulse.processors.models.runtime import amx_tiles  # noqa: E402

LINUX_X86 = sys.platform == "linux" and platform.machine().lower() in {"x86_64", "amd64"}


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def _run_int8_matmul() -> None:
    """A uint8 x int8 MatMulInteger, the pairing of the int8 exports' matrix products."""
    weights = np.arange(-64, 64, dtype=np.int8).reshape(64, 2)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "int8",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, 2])],
        [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    a = np.ones((32, 64), dtype=np.uint8)
    out = session.run(None, {"a": a})[0]
    assert (out == a.astype(np.int32) @ weights.astype(np.int32)).all()


@pytest.mark.skipif(not LINUX_X86, reason="AMX tiles are asked for with arch_prctl, Linux on x86-64")
def test_onnxruntime_holds_amx_tiles_exactly_when_the_cpu_has_them():
    _run_int8_matmul()
    flags = _cpu_flags()
    assert amx_tiles() is ({"amx_tile", "amx_int8"} <= flags)


@pytest.mark.skipif(LINUX_X86, reason="elsewhere the permission cannot be asked")
def test_amx_tiles_is_unknown_off_linux_x86():
    assert amx_tiles() is None


@pytest.mark.skipif(not LINUX_X86, reason="AMX tiles are asked for with arch_prctl, Linux on x86-64")
def test_amx_tiles_asked_for_are_granted_exactly_when_the_cpu_has_them():
    """``request=True`` asks Linux for the tiles (as OpenVINO does before using them): granted
    on an AMX CPU, refused (false) on one without, whatever ran before."""
    assert amx_tiles(request=True) is ({"amx_tile", "amx_bf16"} <= _cpu_flags())


@pytest.mark.skipif(not LINUX_X86, reason="AMX tiles are asked for with arch_prctl, Linux on x86-64")
def test_amx_tiles_is_unknown_where_libc_cannot_be_loaded(monkeypatch):
    """An unusual libc or sandbox gives no answer, not an error that fails a scorer's load."""
    import ctypes

    def no_libc(*args, **kwargs):
        raise OSError("no libc here")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert amx_tiles(request=True) is None


X86_FLAGS = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni{}\nbogomips\t: 4000\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm amx_bf16\nCPU implementer\t: 0x41\n"


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """``bf16_fast`` with OpenVINO offering bf16 and a given cpuinfo text (None: no file) and
    AMX permission (``amx_tiles(request=True)``'s answer)."""
    from llmpulse.processors.models import openvino_backend

    def set_cpu(cpuinfo: str | None, granted: bool | None = True) -> bool:
        path = tmp_path / "cpuinfo"
        path.unlink(missing_ok=True)
        if cpuinfo is not None:
            path.write_text(cpuinfo)
        monkeypatch.setattr(openvino_backend, "CPUINFO", path)
        monkeypatch.setattr(openvino_backend, "amx_tiles", lambda request=False: granted if request else None)
        openvino_backend.bf16_fast.cache_clear()
        return openvino_backend.bf16_fast("CPU")

    monkeypatch.setattr(openvino_backend, "bf16_supported", lambda device="CPU": True)
    yield set_cpu
    openvino_backend.bf16_fast.cache_clear()


def test_bf16_is_fast_only_with_amx_tiles_the_kernel_grants(cpu):
    assert cpu(X86_FLAGS.format(" amx_tile amx_int8 amx_bf16")) is True
    assert cpu(X86_FLAGS.format(" amx_tile amx_int8 amx_bf16"), granted=False) is False  # refused
    assert cpu(X86_FLAGS.format("")) is False  # AVX512-BF16 alone: bf16 is slower than fp32 there
    assert cpu(X86_FLAGS.format(" amx_tile amx_int8")) is False


def test_bf16_is_not_fast_where_the_flags_cannot_be_read(cpu, monkeypatch):
    """No cpuinfo (Windows, macOS), an unreadable one, an ARM CPU (``Features``, not ``flags``):
    false, so an int8 model's float part runs f32, not OpenVINO's bf16 default."""
    from llmpulse.processors.models import openvino_backend

    assert cpu(None) is False
    assert cpu(ARM, granted=None) is False

    cpu(X86_FLAGS.format(" amx_tile amx_int8 amx_bf16"))
    unreadable = openvino_backend.CPUINFO.with_name("unreadable")
    unreadable.mkdir()  # reading it raises an OSError, as a restricted /proc does
    monkeypatch.setattr(openvino_backend, "CPUINFO", unreadable)
    openvino_backend.bf16_fast.cache_clear()
    assert openvino_backend.bf16_fast("CPU") is False
    assert openvino_backend.rest_precision("CPU") == "f32"
