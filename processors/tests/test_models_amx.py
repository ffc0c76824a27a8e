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
