"""Grafana's ClickHouse plugin macros and template variables, expanded the way Grafana does.

Grafana turns a panel's SQL into the statement ClickHouse runs in two places. The
browser applies ``$__conditionalAll(phrase, $var)`` (the phrase, or ``1=1`` when the
variable is "All" or empty), then interpolates template variables (``$var``,
``${var}``, ``${var:format}``) and the global ones (``$__interval``, ``$__from`` ...).
The plugin's backend (grafana-clickhouse-datasource, ``pkg/macros``) then replaces its
macros: ``$__timeFilter(col)``, ``$__timeFilter_ms(col)``, ``$__dateFilter(col)``,
``$__dateTimeFilter(d, t)`` / ``$__dt``, ``$__fromTime``, ``$__toTime``,
``$__fromTime_ms``, ``$__toTime_ms``, ``$__timeInterval(col)``, ``$__timeInterval_ms(col)``
and ``$__interval_s``. ``expand`` does all of it in that order, so the tests and
``llmpulse report`` run the very statement Grafana would send.

Example:
    >>> from datetime import UTC, datetime
    >>> from llmpulse.dashboards.macros import TimeRange, Variable, expand
    >>> window = TimeRange(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 6, tzinfo=UTC))
    >>> expand("SELECT 1 FROM calls_1m WHERE $__timeFilter(minute) "
    ...        "AND $__conditionalAll(app IN (${app:sqlstring}), $app)",
    ...        time_range=window, variables=[Variable.of("app", "bot", "o'neil")])[29:]
    "minute >= toDateTime(1735689600) AND minute <= toDateTime(1735711200) AND app IN ('bot','o''neil')"
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "ALL",
    "TimeRange",
    "Variable",
    "calculate_interval_ms",
    "expand",
    "expand_conditional_all",
    "expand_macros",
    "interpolate_variables",
    "interval_text",
]

ALL = "$__all"
"""The value Grafana stores when "All" is selected."""

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}

# Grafana's rangeutil.roundInterval: (upper bound exclusive, rounded interval), in ms.
_ROUNDING = (
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time picker: ``start`` to ``end``, both UTC-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=UTC))
        if self.end <= self.start:
            raise ValueError(f"time range ends ({self.end}) before it starts ({self.start})")

    @property
    def milliseconds(self) -> int:
        """Length of the range in milliseconds."""
        return _unix_ms(self.end) - _unix_ms(self.start)


@dataclass(frozen=True)
class Variable:
    """A template variable's current selection.

    Attributes:
        name: the variable's name (``app`` for ``$app``).
        values: the selected values (empty with ``all``).
        all: "All" is selected.
        options: every value the variable offers; "All" expands to these (Grafana's
            behaviour when the variable has no custom all value).
        all_value: a custom all value, used verbatim whatever the format.
    """

    name: str
    values: tuple[str, ...] = ()
    all: bool = False
    options: tuple[str, ...] = ()
    all_value: str | None = None

    @classmethod
    def of(cls, name: str, *values: str) -> Variable:
        """A variable with these values selected."""
        return cls(name, tuple(values))

    @classmethod
    def all_of(cls, name: str, options: Iterable[str] = ()) -> Variable:
        """A variable with "All" selected; ``options`` are what All stands for."""
        return cls(name, (), True, tuple(options))

    @property
    def current(self) -> str:
        """``current.value.toString()`` as the plugin reads it for ``$__conditionalAll``."""
        return ALL if self.all else ",".join(self.values)

    def interpolated(self) -> str | list[str]:
        """What Grafana formats: a list for several values (or All), a string for one."""
        if self.all:
            if self.all_value is not None:
                return self.all_value
            return list(self.options)
        return self.values[0] if len(self.values) == 1 else list(self.values)


def calculate_interval_ms(
    time_range: TimeRange, *, max_data_points: int = 1000, min_interval: str | None = None
) -> int:
    """Grafana's ``rangeutil.calculateInterval``: the range over the data points, rounded
    to a "nice" interval, no finer than ``min_interval`` (``"1m"``, the panel's setting)."""
    raw = time_range.milliseconds / max(max_data_points, 1)
    rounded = next((value for bound, value in _ROUNDING if raw < bound), 31_536_000_000)
    low = _parse_interval_ms(min_interval) if min_interval else 1
    return max(rounded, low)


def interval_text(interval_ms: int) -> str:
    """Grafana's ``secondsToHms``: 60000 -> ``1m``, 90000 -> ``1m`` (the largest unit only)."""
    seconds = interval_ms / 1000
    for unit, size in (("y", 31_536_000), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(interval_ms)}ms"


def _parse_interval_ms(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)(ms|s|m|h|d|w)\s*", text)
    if not match:
        raise ValueError(f"not an interval: {text!r} (use e.g. 30s, 1m, 1h)")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def _unix_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# -- step 1: $__conditionalAll (the plugin's frontend) ------------------------------------

_CONDITIONAL_ALL = "$__conditionalAll("
_VARIABLE_IN_ARG = re.compile(r"(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+")


def _macro_args(text: str, open_index: int) -> tuple[list[str], int] | None:
    """Arguments of a macro whose ``(`` is at ``open_index``: split at top-level commas,
    parentheses balanced. Returns the raw arguments and the index after ``)``."""
    depth = 0
    start = open_index + 1
    args: list[str] = []
    for index in range(open_index, len(text)):
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(text[start:index])
                return args, index + 1
        elif char == "," and depth == 1:
            args.append(text[start:index])
            start = index + 1
    return None


def expand_conditional_all(sql: str, variables: Mapping[str, Variable]) -> str:
    """``$__conditionalAll(phrase, $var)``: ``1=1`` when ``$var`` is All or empty, else
    the phrase. Like the plugin, works from the last occurrence backwards and leaves a
    call with other than two arguments alone."""
    index = sql.rfind(_CONDITIONAL_ALL)
    while index != -1:
        parsed = _macro_args(sql, index + len(_CONDITIONAL_ALL) - 1)
        if parsed is None or len(parsed[0]) != 2:
            return sql
        (phrase, var_arg), end = parsed
        found = _VARIABLE_IN_ARG.search(var_arg.strip())
        if found:
            variable = variables.get(found.group(0))
            current = variable.current if variable is not None else ""
            if current in ("", ALL):
                phrase = "1=1"
        sql = sql[:index] + phrase + sql[end:]
        index = sql.rfind(_CONDITIONAL_ALL)
    return sql


# -- step 2: template variables (Grafana's templateSrv) -----------------------------------

# Grafana's variable regex: $var, [[var]] / [[var:fmt]], ${var}, ${var.field}, ${var:fmt}.
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def _quote(values: str | list[str], quote: str, escaped: str) -> str:
    items = values if isinstance(values, list) else [values]
    return ",".join(f"{quote}{v.replace(quote, escaped)}{quote}" for v in items)


def _regex_escape(value: str) -> str:
    return re.sub(r"[\\^$*+?.()|{}\[\]/]", lambda m: "\\" + m.group(0), value)


_FORMATS: dict[str, Callable[[str | list[str]], str]] = {
    "raw": lambda v: ",".join(v) if isinstance(v, list) else v,
    "csv": lambda v: ",".join(v) if isinstance(v, list) else v,
    "text": lambda v: " + ".join(v) if isinstance(v, list) else v,
    "pipe": lambda v: "|".join(v) if isinstance(v, list) else v,
    "json": lambda v: json.dumps(v),
    "singlequote": lambda v: _quote(v, "'", "\\'"),
    "doublequote": lambda v: _quote(v, '"', '\\"'),
    "sqlstring": lambda v: _quote(v, "'", "''"),
    "glob": lambda v: (
        "{" + ",".join(v) + "}"
        if isinstance(v, list) and len(v) > 1
        else (v[0] if isinstance(v, list) and v else v if isinstance(v, str) else "")
    ),
    "regex": lambda v: (
        ("(" + "|".join(_regex_escape(x) for x in v) + ")")
        if isinstance(v, list) and len(v) > 1
        else _regex_escape(v[0] if isinstance(v, list) and v else v if isinstance(v, str) else "")
    ),
}


def _plugin_default_format(value: str | list[str]) -> str:
    """The ClickHouse plugin's own format for ``$var`` without a format: several values
    become ``'a','b'`` (not escaped), one value is inserted as it is."""
    if isinstance(value, list):
        return "'" + "','".join(value) + "'"
    return value


def interpolate_variables(
    sql: str, variables: Mapping[str, Variable], builtins: Mapping[str, str] | None = None
) -> str:
    """Replace ``$var``, ``${var}``, ``${var:format}`` and ``[[var]]``; unknown names stay.

    Formats: ``raw``, ``csv``, ``text``, ``pipe``, ``json``, ``singlequote``,
    ``doublequote``, ``sqlstring`` (quotes doubled), ``glob``, ``regex``; without a format
    the plugin's own (``'a','b'`` for several values). A custom all value is inserted
    verbatim whatever the format, as in Grafana.
    """
    builtins = builtins or {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins:
            return builtins[name]
        variable = variables.get(name)
        if variable is None:
            return match.group(0)
        value = variable.interpolated()
        if variable.all and variable.all_value is not None:
            return variable.all_value
        if fmt is None:
            return _plugin_default_format(value)
        formatter = _FORMATS.get(fmt.split(":")[0])
        if formatter is None:
            raise ValueError(f"template variable format {fmt!r} is not supported")
        return formatter(value)

    return _VARIABLE.sub(replace, sql)


# -- step 3: the plugin backend's macros ---------------------------------------------------


def _to_datetime(moment: datetime) -> str:
    return f"toDateTime({int(moment.timestamp())})"


def _to_datetime64(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({_unix_ms(moment)})"


def _to_date(moment: datetime) -> str:
    return f"toDate('{moment.astimezone(UTC):%Y-%m-%d}')"


def _range_filter(convert: Callable[[datetime], str]) -> Callable[[list[str], TimeRange, int], str]:
    def macro(args: list[str], window: TimeRange, _interval_ms: int) -> str:
        _expect(args, 1)
        column = args[0]
        return f"{column} >= {convert(window.start)} AND {column} <= {convert(window.end)}"

    return macro


def _date_time_filter(args: list[str], window: TimeRange, _interval_ms: int) -> str:
    _expect(args, 2)
    date_col, time_col = args
    return (
        f"({date_col} >= {_to_date(window.start)} AND {date_col} <= {_to_date(window.end)}) AND "
        f"({time_col} >= {_to_datetime(window.start)} AND {time_col} <= {_to_datetime(window.end)})"
    )


def _time_interval(args: list[str], _window: TimeRange, interval_ms: int) -> str:
    _expect(args, 1)
    return f"toStartOfInterval(toDateTime({args[0]}), INTERVAL {max(interval_ms // 1000, 1)} second)"


def _time_interval_ms(args: list[str], _window: TimeRange, interval_ms: int) -> str:
    _expect(args, 1)
    return f"toStartOfInterval(toDateTime64({args[0]}, 3), INTERVAL {max(interval_ms, 1)} millisecond)"


def _expect(args: list[str], count: int) -> None:
    if len(args) != count:
        raise ValueError(f"unexpected number of arguments: expected {count}, received {len(args)}")


_MACROS: dict[str, Callable[[list[str], TimeRange, int], str]] = {
    "fromTime": lambda _a, w, _i: _to_datetime(w.start),
    "toTime": lambda _a, w, _i: _to_datetime(w.end),
    "fromTime_ms": lambda _a, w, _i: _to_datetime64(w.start),
    "toTime_ms": lambda _a, w, _i: _to_datetime64(w.end),
    "timeFilter": _range_filter(_to_datetime),
    "timeFilter_ms": _range_filter(_to_datetime64),
    "dateFilter": _range_filter(_to_date),
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": lambda _a, _w, i: str(max(i // 1000, 1)),
}
_MACRO_NAME = re.compile(r"\$__(\w+)")


def expand_macros(sql: str, time_range: TimeRange, interval_ms: int) -> str:
    """Replace the plugin backend's macros; other ``$__names`` are left as they are."""
    out: list[str] = []
    position = 0
    for match in _MACRO_NAME.finditer(sql):
        if match.start() < position:
            continue
        name = match.group(1)
        macro = _MACROS.get(name)
        if macro is None:
            continue
        end = match.end()
        args: list[str] = []
        if end < len(sql) and sql[end] == "(":
            parsed = _macro_args(sql, end)
            if parsed is None:
                raise ValueError(f"unbalanced parentheses after $__{name}")
            raw_args, end = parsed
            args = [a.strip() for a in raw_args if a.strip()] if any(a.strip() for a in raw_args) else []
        out.append(sql[position : match.start()])
        out.append(macro(args, time_range, interval_ms))
        position = end
    out.append(sql[position:])
    return "".join(out)


def expand(
    sql: str,
    *,
    time_range: TimeRange,
    variables: Iterable[Variable] | Mapping[str, Variable] = (),
    interval_ms: int | None = None,
    max_data_points: int = 1000,
    min_interval: str | None = "1m",
) -> str:
    """The statement Grafana sends to ClickHouse for a panel's SQL.

    Args:
        sql: the panel's SQL, with macros and template variables.
        time_range: the dashboard's time range.
        variables: the template variables' current selections.
        interval_ms: the query interval; None computes it like Grafana from the range,
            ``max_data_points`` and the panel's ``min_interval``.
        max_data_points: Grafana uses the panel's width in pixels; 1000 by default.
        min_interval: the panel's minimum interval (``1m``: the rollups are per minute).
    """
    by_name = dict(variables) if isinstance(variables, Mapping) else {v.name: v for v in variables}
    if interval_ms is None:
        interval_ms = calculate_interval_ms(
            time_range, max_data_points=max_data_points, min_interval=min_interval
        )
    start_ms, end_ms = _unix_ms(time_range.start), _unix_ms(time_range.end)
    builtins = {
        "__interval": interval_text(interval_ms),
        "__interval_ms": str(interval_ms),
        "__from": str(start_ms),
        "__to": str(end_ms),
        "__range": interval_text(end_ms - start_ms),
        "__range_s": str((end_ms - start_ms) // 1000),
        "__range_ms": str(end_ms - start_ms),
    }
    sql = expand_conditional_all(sql, by_name)
    sql = interpolate_variables(sql, by_name, builtins)
    return expand_macros(sql, time_range, interval_ms)
