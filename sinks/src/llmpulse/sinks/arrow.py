"""Column-oriented Python values to an Arrow table typed for a ClickHouse table.

The store inserts every batch as Arrow, so the per-row work in Python is only the mapping
in ``rows``; pyarrow's C++ builders and the engine's Arrow reader do the rest. Two readers
take the table: a server reads the ``Arrow`` input format (``clickhouse-connect``'s
``insert_arrow``), chDB reads the table in place with its ``Python()`` table function
(``python_table=True``: no copy, no file). Each Arrow type follows the ClickHouse column
type (read once per table from ``system.columns``), so a value that does not fit its
column (5 billion tokens in a ``UInt32``) fails here, before anything is sent, as a
``ValueError`` or ``TypeError`` the store reports as refused rows.

Example:
    >>> from llmpulse.sinks.arrow import arrow_type, to_arrow
    >>> str(arrow_type("Map(LowCardinality(String), Float64)"))
    'map<binary, double>'
    >>> table = to_arrow({"n": "Nullable(UInt32)", "tags": "Array(String)"},
    ...                  ["n", "tags"], [[1, None], [["a"], []]])
    >>> table.column("n").to_pylist(), table.column("tags").to_pylist()
    ([1, None], [[b'a'], []])
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["arrow_type", "to_arrow", "uuid_array"]

_SCALARS: dict[str, pa.DataType] = {
    "String": pa.binary(), "UUID": pa.binary(16), "Bool": pa.bool_(),
    "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(), "UInt64": pa.uint64(),
    "Int8": pa.int8(), "Int16": pa.int16(), "Int32": pa.int32(), "Int64": pa.int64(),
    "Float32": pa.float32(), "Float64": pa.float64(),
}
_UUID = pa.binary(16)
_TEXT, _BINARY = pa.string(), pa.binary()
_WRAPPER = re.compile(r"(\w+)\((.*)\)$", re.DOTALL)


@lru_cache(maxsize=256)
def arrow_type(clickhouse_type: str) -> pa.DataType:
    """The Arrow type ClickHouse reads into ``clickhouse_type``.

    Strings are sent as binary (a ClickHouse ``String`` is bytes; ``str`` values are
    encoded as UTF-8), UUIDs as their 16 bytes, enums by name, timestamps as UTC
    microseconds (seconds for ``DateTime``).

    Raises:
        ValueError: a type the store never inserts (aggregate states ...).
    """
    text = clickhouse_type.strip()
    if text in _SCALARS:
        return _SCALARS[text]
    if text.startswith("DateTime64"):
        return pa.timestamp("us", tz="UTC")
    if text.startswith("DateTime"):
        return pa.timestamp("s", tz="UTC")
    match = _WRAPPER.match(text)
    if match is None:
        raise ValueError(f"no Arrow type for ClickHouse type {clickhouse_type!r}")
    wrapper, inner = match.groups()
    if wrapper in ("Nullable", "LowCardinality"):
        return arrow_type(inner)
    if wrapper.startswith("Enum"):
        return pa.string()
    if wrapper == "Array":
        return pa.list_(arrow_type(inner))
    if wrapper == "Map":
        key, value = _split_pair(inner)
        return pa.map_(arrow_type(key), arrow_type(value))
    raise ValueError(f"no Arrow type for ClickHouse type {clickhouse_type!r}")


def _split_pair(text: str) -> tuple[str, str]:
    """``K, V`` at the top level of a ``Map(K, V)``."""
    depth = 0
    for i, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            return text[:i], text[i + 1:]
    raise ValueError(f"not a key, value pair: {text!r}")


def _array(values: Sequence[Any] | pa.Array, kind: pa.DataType, python_table: bool) -> pa.Array:
    if isinstance(values, pa.Array):  # built for the whole batch by the row mapping
        return values.cast(kind)
    if kind == _UUID:
        return uuid_array(values, python_table=python_table)
    if kind in (_TEXT, _BINARY):
        same = _repeated(values, kind)
        if same is not None:
            return same
    if pa.types.is_timestamp(kind) and kind.unit == "us":
        micros = _timestamp_micros(values)
        if micros is not None:
            return pa.array(micros, pa.int64()).view(kind)
        # RFC 3339 text from msgspec's C encoder, parsed by Arrow: ~4x faster than
        # pyarrow converting each aware datetime (a utcoffset() call per value).
        try:
            return pc.cast(pa.array(msgspec.to_builtins(values), pa.string()), kind)
        except pa.ArrowInvalid:  # a naive datetime (no offset): pyarrow reads it as UTC
            return pa.array(values, kind)
    if pa.types.is_map(kind):
        # Flattened keys and values with offsets: far faster than a list of item pairs.
        offsets = pa.array([0, *itertools.accumulate(map(len, values))], pa.int32())
        keys = pa.array([k for m in values for k in m], kind.key_type)
        items = pa.array([v for m in values for v in m.values()], kind.item_type)
        return pa.MapArray.from_arrays(offsets, keys, items)
    return pa.array(values, kind)


def _repeated(values: Sequence[Any], kind: pa.DataType) -> pa.Array | None:
    """One string in every row (an app, an environment, a policy version: a batch often
    has one) as that value repeated, without reading each row again; else None.

    Only for ``str`` (equal to nothing but a ``str``): the same array as ``pa.array``
    makes. The first, middle and last rows are compared before all of them, so a column
    of different values costs three comparisons."""
    n = len(values)
    first = values[0] if n else None
    if (type(first) is not str or values[-1] != first or values[n // 2] != first
            or values.count(first) != n):
        return None
    return pa.repeat(pa.scalar(first, kind), n)


_TIMESTAMPS = msgspec.msgpack.Encoder()


def _timestamp_micros(values: Sequence[Any]) -> np.ndarray | None:
    """UTC microseconds of aware datetimes, read from msgspec's MessagePack encoding of
    them all at once; None when the encoding is not the one handled here (then the caller
    converts otherwise).

    An aware datetime is a MessagePack timestamp: for an instant between 1970 and 2514
    with a fraction of a second, ``timestamp 64`` (``d7 ff`` and 8 big-endian bytes: 30
    bits of nanoseconds, 34 of seconds), so ``n`` of them take ``10 n`` bytes after a 1, 3
    or 5 byte array header. A whole second (``timestamp 32``), another range, a naive
    datetime (encoded as text) or None makes another length or another marker.
    """
    cells = _packed_cells(_TIMESTAMPS, values, 10, 0xD7, 0xFF)
    if cells is None:
        return None
    stamps = cells[:, 2:].copy().view(">u8").ravel()
    seconds = (stamps & np.uint64((1 << 34) - 1)).astype(np.int64)
    nanoseconds = (stamps >> np.uint64(34)).astype(np.int64)
    return seconds * 1_000_000 + nanoseconds // 1_000


def uuid_array(values: Sequence[Any], *, python_table: bool = False) -> pa.Array:
    """UUIDs (or their text) as 16 bytes each; for chDB's ``Python()`` reader in ClickHouse's
    own order, two little-endian 64-bit halves (the reader casts the bytes as they lie)."""
    data = _uuid_bytes(values)
    if data is None:
        data = np.frombuffer(b"".join([v.bytes if type(v) is uuid.UUID else uuid.UUID(str(v)).bytes
                                       for v in values]), np.uint8)
    if python_table:
        data = data.reshape(-1, 2, 8)[:, :, ::-1]
    return pa.FixedSizeBinaryArray.from_buffers(_UUID, len(values), [None, pa.py_buffer(data.tobytes())])


_UUID_BYTES = msgspec.msgpack.Encoder(uuid_format="bytes")


def _uuid_bytes(values: Sequence[Any]) -> np.ndarray | None:
    """The 16 bytes of each of ``values`` when every one is a ``uuid.UUID``, else None.

    msgspec's C encoder writes a list of UUIDs as a MessagePack array of ``bin 16``
    (a 1, 3 or 5 byte array header, then ``c4 10`` and the 16 bytes of each): the bytes
    are cut out of that without a Python object per id (``UUID.bytes`` is a Python-level
    property, ~0.2 us an id). Anything else in the list (text, a ``bytes`` value) makes
    another length or another marker, and the caller converts value by value (a
    16-byte ``bytes`` value would pass as an id's bytes; event ids are always ``UUID``).
    """
    if len(values) == 0 or type(values[0]) is not uuid.UUID:
        return None
    cells = _packed_cells(_UUID_BYTES, values, 18, 0xC4, 0x10)
    return None if cells is None else cells[:, 2:].reshape(-1)


def _packed_cells(encoder: msgspec.msgpack.Encoder, values: Sequence[Any], width: int,
                  first: int, second: int) -> np.ndarray | None:
    """``values`` encoded as one MessagePack array whose every element is ``width`` bytes
    starting with the bytes ``first`` and ``second``, as an ``n x width`` array of bytes;
    None when the encoding fails or is any other (the caller converts otherwise)."""
    n = len(values)
    if n == 0:
        return None
    try:
        packed = encoder.encode(values)
    except (TypeError, ValueError, OverflowError):
        return None
    header = len(packed) - width * n
    if header not in (1, 3, 5):  # fixarray, array 16, array 32
        return None
    cells = np.frombuffer(packed, np.uint8, offset=header).reshape(n, width)
    if not ((cells[:, 0] == first).all() and (cells[:, 1] == second).all()):
        return None
    return cells


@lru_cache(maxsize=256)
def _as_text(kind: pa.DataType) -> pa.DataType:
    """``kind`` with ``binary`` read as ``string`` (the same buffers): chDB's ``Python()``
    reader copies an Arrow string into a ``String`` column and converts a binary one."""
    if kind == pa.binary():
        return pa.string()
    if pa.types.is_list(kind):
        return pa.list_(_as_text(kind.value_type))
    if pa.types.is_map(kind):
        return pa.map_(_as_text(kind.key_type), _as_text(kind.item_type))
    return kind


def to_arrow(types: Mapping[str, str], names: Sequence[str], columns: Sequence[Sequence[Any]], *,
             python_table: bool = False) -> pa.Table:
    """``columns`` (one sequence per name) as an Arrow table typed after ``types``.

    Args:
        types: ClickHouse type by column name (``system.columns``).
        names: the columns being inserted, in the order of ``columns``.
        columns: the values, column-oriented.
        python_table: for chDB's ``Python()`` table function (``INSERT … SELECT * FROM
            Python(table)``) instead of the ``Arrow`` input format: strings as Arrow
            ``string`` (the UTF-8 bytes are not checked again), UUIDs in ClickHouse's
            byte order.

    Raises:
        ValueError, TypeError: a value does not fit its column.
    """
    arrays = []
    for name, values in zip(names, columns, strict=True):
        kind = types[name]
        try:
            array = _array(values, arrow_type(kind), python_table)
        except (ValueError, TypeError, OverflowError) as exc:
            raise type(exc)(f"column {name} ({kind}): {exc}") from exc
        arrays.append(array.view(_as_text(array.type)) if python_table else array)
    return pa.Table.from_arrays(arrays, names=list(names))
