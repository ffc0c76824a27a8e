"""The Grafana ClickHouse plugin's macros and Grafana's variable interpolation, case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llmpulse.dashboards.macros import (
    TimeRange,
    Variable,
    calculate_interval_ms,
    expand,
    expand_conditional_all,
    expand_macros,
    interpolate_variables,
    interval_text,
)

START = datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
WINDOW = TimeRange(START, START + timedelta(hours=6))
FROM_S, TO_S = 1740830400, 1740852000
FROM_MS, TO_MS = 1740830400250, 1740852000250


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("$__timeFilter(minute)", f"minute >= toDateTime({FROM_S}) AND minute <= toDateTime({TO_S})"),
        (
            "$__timeFilter_ms(t)",
            f"t >= fromUnixTimestamp64Milli({FROM_MS}) AND t <= fromUnixTimestamp64Milli({TO_MS})",
        ),
        ("$__fromTime AND $__toTime", f"toDateTime({FROM_S}) AND toDateTime({TO_S})"),
        (
            "$__fromTime_ms/$__toTime_ms",
            f"fromUnixTimestamp64Milli({FROM_MS})/fromUnixTimestamp64Milli({TO_MS})",
        ),
        ("$__dateFilter(d)", "d >= toDate('2025-03-01') AND d <= toDate('2025-03-01')"),
        (
            "$__dt(d, t)",
            f"(d >= toDate('2025-03-01') AND d <= toDate('2025-03-01')) AND "
            f"(t >= toDateTime({FROM_S}) AND t <= toDateTime({TO_S}))",
        ),
        ("$__timeInterval(minute)", "toStartOfInterval(toDateTime(minute), INTERVAL 300 second)"),
        ("$__timeInterval_ms(ts)", "toStartOfInterval(toDateTime64(ts, 3), INTERVAL 300000 millisecond)"),
        ("x / $__interval_s", "x / 300"),
        (
            "$__timeFilter( toDateTime(window_end) )",
            f"toDateTime(window_end) >= toDateTime({FROM_S}) AND "
            f"toDateTime(window_end) <= toDateTime({TO_S})",
        ),
        ("$__unknownMacro(x)", "$__unknownMacro(x)"),
    ],
)
def test_backend_macros_expand_like_the_plugin(sql: str, expected: str) -> None:
    assert expand_macros(sql, WINDOW, 300_000) == expected


def test_time_interval_is_at_least_one_second() -> None:
    assert (
        expand_macros("$__timeInterval(t)", WINDOW, 200)
        == "toStartOfInterval(toDateTime(t), INTERVAL 1 second)"
    )
    assert expand_macros("$__interval_s", WINDOW, 10) == "1"


def test_macro_with_wrong_argument_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected 1"):
        expand_macros("$__timeFilter(a, b)", WINDOW, 1000)


def test_conditional_all_drops_the_phrase_for_all_and_keeps_it_otherwise() -> None:
    sql = ("WHERE $__conditionalAll(app IN (${app:sqlstring}), $app) "
           "AND $__conditionalAll(model IN ($model), ${model})")
    both_all = expand_conditional_all(sql, {"app": Variable.all_of("app"), "model": Variable.all_of("model")})
    assert both_all == "WHERE 1=1 AND 1=1"
    one = expand_conditional_all(sql, {"app": Variable.of("app", "bot"), "model": Variable.all_of("model")})
    assert one == "WHERE app IN (${app:sqlstring}) AND 1=1"
    # An empty selection counts as All, as in the plugin.
    assert (
        expand_conditional_all(sql, {"app": Variable("app"), "model": Variable.of("model", "m")})
        == "WHERE 1=1 AND model IN ($model)"
    )


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("sqlstring", "'bot','o''neil'"),
        ("singlequote", "'bot','o\\'neil'"),
        ("doublequote", '"bot","o\'neil"'),
        ("csv", "bot,o'neil"),
        ("pipe", "bot|o'neil"),
        ("json", '["bot", "o\'neil"]'),
        ("glob", "{bot,o'neil}"),
        ("regex", "(bot|o'neil)"),
    ],
)
def test_variable_formats_for_several_values(fmt: str, expected: str) -> None:
    variables = {"app": Variable.of("app", "bot", "o'neil")}
    assert interpolate_variables(f"${{app:{fmt}}}", variables) == expected


def test_variable_without_format_uses_the_plugins_own() -> None:
    variables = {"app": Variable.of("app", "a", "b"), "one": Variable.of("one", "x.y")}
    assert (
        interpolate_variables("app IN ($app) AND v = '$one' AND [[one]] ${one}", variables)
        == "app IN ('a','b') AND v = 'x.y' AND x.y x.y"
    )
    assert interpolate_variables("${one:regex}", variables) == "x\\.y"


def test_all_expands_to_every_option_or_the_custom_all_value() -> None:
    options = Variable.all_of("app", ["a", "b"])
    assert interpolate_variables("${app:sqlstring}", {"app": options}) == "'a','b'"
    custom = Variable("app", (), True, ("a",), all_value=".*")
    assert interpolate_variables("${app:sqlstring}", {"app": custom}) == ".*"


def test_unknown_variables_and_plugin_macros_are_left_for_later() -> None:
    assert (
        interpolate_variables("$nope ${nope:csv} $__timeFilter(t) $__interval_s", {})
        == "$nope ${nope:csv} $__timeFilter(t) $__interval_s"
    )


def test_expand_runs_the_three_steps_in_grafanas_order() -> None:
    sql = (
        "SELECT $__timeInterval(minute) AS time FROM calls_1m WHERE $__timeFilter(minute) "
        "AND $__conditionalAll(app IN (${app:sqlstring}), $app) AND x = $__interval_ms AND y = '$__interval'"
    )
    out = expand(sql, time_range=WINDOW, variables=[Variable.of("app", "bot")])
    assert out == (
        f"SELECT toStartOfInterval(toDateTime(minute), INTERVAL 60 second) AS time FROM calls_1m "
        f"WHERE minute >= toDateTime({FROM_S}) AND minute <= toDateTime({TO_S}) AND app IN ('bot') "
        "AND x = 60000 AND y = '1m'"
    )
    assert "$" not in expand(sql, time_range=WINDOW, variables=[Variable.all_of("app")])


@pytest.mark.parametrize(
    ("hours", "points", "min_interval", "expected_ms"),
    [
        (6, 1000, None, 20_000),  # 21.6 s rounds to 20 s
        (6, 1000, "1m", 60_000),  # the panel's minimum wins
        (24 * 7, 1000, "1m", 600_000),  # 604.8 s rounds to 10 m
        (24, 100, None, 900_000),  # 864 s rounds to 15 m
        (1, 1000, "1m", 60_000),
    ],
)
def test_interval_follows_grafanas_rounding(
    hours: int, points: int, min_interval: str | None, expected_ms: int
) -> None:
    window = TimeRange(START, START + timedelta(hours=hours))
    assert calculate_interval_ms(window, max_data_points=points, min_interval=min_interval) == expected_ms


def test_interval_text() -> None:
    assert [interval_text(ms) for ms in (500, 20_000, 60_000, 600_000, 3_600_000, 86_400_000)] == [
        "500ms",
        "20s",
        "1m",
        "10m",
        "1h",
        "1d",
    ]


def test_time_range_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        TimeRange(START, START)
