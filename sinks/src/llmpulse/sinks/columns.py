"""Columns of a whole batch as Arrow arrays: lists, maps and JSON text without a Python
object per row, and the open ``attributes`` map's text.

The row mappings (``llmpulse.sinks.rows``) build their nested columns with these: all the
batch's values in one flat array, and each row's share given by offsets.

Example:
    >>> from llmpulse.sinks.columns import as_python, attribute_maps, string_lists
    >>> as_python(string_lists([2, 0, 1], ["a", "b", "c"]))
    [['a', 'b'], [], ['c']]
    >>> as_python(attribute_maps([{"tier": 2, "beta": True}, {}]))
    [{'tier': '2', 'beta': 'true'}, {}]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any, cast

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["as_numpy", "as_python", "attribute_maps", "attribute_text", "attributes_map", "json_lines",
           "last_per_key", "offsets", "per_position", "repeated_lineup", "row_offsets", "same_lineup",
           "string_lists"]

_json = msgspec.json.Encoder()


def attributes_map(attributes: Mapping[str, object]) -> dict[str, str]:
    """The open ``attributes`` map as ``Map(String, String)``: strings as they are,
    other values as JSON (``true``, ``1.5``, ``null``)."""
    if not attributes:
        return {}
    for value in attributes.values():
        if type(value) is not str:
            break
    else:  # all strings already (the common case)
        return cast(dict[str, str], dict(attributes))
    return {k: v if type(v) is str else attribute_text(v) for k, v in attributes.items()}


def attribute_text(value: object) -> str:
    """A non-string attribute value as ``Map(String, String)`` text (JSON)."""
    if value is None or type(value) is bool:
        return _LITERALS[value]
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return str(value)
    return _json.encode(value).decode()


_LITERALS: dict[object, str] = {None: "null", True: "true", False: "false"}


def attribute_maps(maps: Sequence[Mapping[str, object]]) -> pa.MapArray:
    """``attributes_map`` of each mapping, as one ``Map(String, String)`` column.

    When every mapping has the same keys in the same order (an app's attributes, a
    prompt's variables), the keys are the first mapping's repeated and the values are
    converted key by key, each key's values with one C-level pass when they are of one
    type (all ``int``: ``str``; all ``bool`` or None: their JSON literal)."""
    n = len(maps)
    counts = np.fromiter(map(len, maps), np.int64, n)
    values = [v for m in maps for v in m.values()]
    keys = list(chain.from_iterable(maps))
    lineup = same_lineup(keys, counts)
    if lineup is not None:
        return pa.MapArray.from_arrays(offsets(counts, n), repeated_lineup(lineup, n),
                                       pa.array(_texts_by_position(values, len(lineup)), pa.string()))
    try:
        items = pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # numbers or booleans among them
        items = None
    if items is None or items.null_count:  # None is "null"
        items = pa.array(_texts(values), pa.string())
    return pa.MapArray.from_arrays(offsets(counts, n), pa.array(keys, pa.string()), items)


def _texts(values: list[object]) -> list[str]:
    """Attribute values as ``Map(String, String)`` text (``attributes_map``'s)."""
    return [v if type(v) is str else _LITERALS[v] if v is None or type(v) is bool
            else str(v) if type(v) is int else attribute_text(v) for v in values]


_LITERAL_TYPES = {bool, type(None)}


def _texts_by_position(values: list[object], k: int) -> list[object]:
    """``values`` (rows of ``k``, one key a position) as text, in place, position by position."""
    for j in range(k):
        column = values[j::k]
        kinds = set(map(type, column))
        if kinds == {str}:
            continue
        values[j::k] = (list(map(str, column)) if kinds == {int}
                        else [_LITERALS[v] for v in column] if kinds <= _LITERAL_TYPES
                        else _texts(column))
    return values


def offsets(counts: Iterable[int] | np.ndarray, n: int) -> pa.Array:
    """List offsets from each row's count (``n`` rows)."""
    result = np.zeros(n + 1, np.int32)
    np.cumsum(counts if isinstance(counts, np.ndarray) else np.fromiter(counts, np.int32, n), out=result[1:])
    return pa.array(result)


def as_python(column: Sequence[Any] | pa.Array) -> list[Any]:
    """A column's Python values (a map's rows as dicts), for a client that encodes Python values."""
    if not isinstance(column, pa.Array):
        return list(column)
    if pa.types.is_map(column.type):
        return [dict(pairs) for pairs in column.to_pylist()]
    return cast(list[Any], column.to_pylist())


def string_lists(counts: list[int], values: list[str]) -> pa.ListArray:
    """An ``Array(String)`` column from each row's count and the values of all rows."""
    return pa.ListArray.from_arrays(offsets(counts, len(counts)), pa.array(values, pa.string()))


def json_lines(lines: bytes, n: int) -> pa.Array:
    """``n`` newline-terminated JSON documents (``Encoder.encode_lines``) as a string column,
    ``null`` as empty. JSON text holds no raw newline, so each line is one row."""
    whole = pa.LargeStringArray.from_buffers(1, pa.py_buffer(np.array([0, len(lines)], np.int64)),
                                             pa.py_buffer(lines))  # the batch's text may pass 2 GiB
    column = pc.list_flatten(pc.split_pattern(whole, "\n"))
    if len(column) != n + 1:  # cannot happen with msgspec's encoder; say so rather than misalign rows
        raise ValueError(f"{len(column) - 1} JSON lines for {n} rows")
    column = column[:n]  # after the last newline: nothing
    nulls = pc.equal(column, "null")
    return pc.if_else(nulls, "", column) if nulls.true_count else column  # (no copy when none)


def as_numpy(mask: pa.BooleanArray) -> np.ndarray:
    """A boolean Arrow array without nulls as a numpy mask."""
    return np.asarray(mask.to_numpy(zero_copy_only=False), bool)


def last_per_key(key: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``positions`` keeping, for each key, only the last (ascending order). ``key`` holds
    non-negative integers of a small range (a row times the names plus a name's code)."""
    if len(positions) == 0:
        return positions
    keys = key[positions]
    if keys.max() < 8 * len(keys) + 1024 and np.bincount(keys).max() == 1:
        return positions  # each key once, the common case: a count, not a sort (a count's
        # memory is the keys' range: only where it is near their number)
    _, first_from_end = np.unique(keys[::-1], return_index=True)
    if len(first_from_end) == len(positions):
        return positions
    return np.sort(positions[len(positions) - 1 - first_from_end])


def row_offsets(rows: np.ndarray, n: int) -> pa.Array:
    """List offsets for values whose rows are ``rows`` (ascending)."""
    return pa.array(np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n)))).astype(np.int32))


def same_lineup(names: list[str], counts: np.ndarray) -> list[str] | None:
    """The names every row holds, in the same order and each once, when all rows agree
    (``names``: all rows' names in row order, ``counts``: each row's number); else None."""
    k = int(counts[0]) if len(counts) else 0
    if k == 0 or not (counts == k).all():
        return None
    lineup = names[:k]
    if len(set(lineup)) != k or names != lineup * len(counts):
        return None
    return lineup


def per_position(values: list[Any], k: int) -> bool:
    """Whether rows of ``k`` strings (``values``, row after row) all hold the first row's:
    each position one string, compared position by position in C."""
    for j, first in enumerate(values[:k]):
        if type(first) is not str:
            return False
        column = values[j::k]
        if column.count(first) != len(column):
            return False
    return True


def repeated_lineup(lineup: Sequence[str], n: int) -> pa.Array:
    """``lineup`` once per row for ``n`` rows, as one string column (no text converted per row)."""
    return pa.array(lineup, pa.string()).take(np.tile(np.arange(len(lineup)), n))
