"""The committed Grafana JSON and provisioning files match the code and hold together."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from llmpulse.dashboards.alerts import AlertThresholds, alert_rules
from llmpulse.dashboards.definitions import DASHBOARDS
from llmpulse.dashboards.grafana import DATASOURCE_TYPE, DATASOURCE_UID, FOLDER_TITLE, check, generate
from llmpulse.dashboards.pipeline_board import pipeline_alert_rules

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"


def test_committed_files_are_what_the_code_generates() -> None:
    stale = check(GRAFANA, AlertThresholds())
    assert not stale, f"out of date, run `uv run llmpulse dashboards generate`: {stale}"


def test_check_notices_a_hand_edit(tmp_path: Path) -> None:
    generate(tmp_path, AlertThresholds())
    assert check(tmp_path, AlertThresholds()) == []
    board = tmp_path / "dashboards" / "llmpulse-overview.json"
    board.write_text(board.read_text().replace("llmpulse / Overview", "edited"))
    assert check(tmp_path, AlertThresholds()) == ["dashboards/llmpulse-overview.json"]
    assert check(tmp_path, AlertThresholds(error_rate=0.2)) == [
        "dashboards/llmpulse-overview.json",
        "provisioning/alerting/llmpulse-rules.yaml",
    ]


def test_dashboards_are_valid_grafana_json() -> None:
    for spec in DASHBOARDS:
        board = json.loads((GRAFANA / "dashboards" / f"{spec.uid}.json").read_text())
        assert board["uid"] == spec.uid and board["title"] == spec.title
        names = [v["name"] for v in board["templating"]["list"]]
        assert names == [v.name for v in spec.variables]
        for variable in board["templating"]["list"]:
            assert variable["type"] == "query" and variable["datasource"]["uid"] == DATASOURCE_UID
            assert variable["refresh"] == 2  # on time range change: options follow the range
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
            mine = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not mine & cells, f"{spec.uid}: panel {panel['title']} overlaps another"
            cells |= mine
            if panel["datasource"]["type"] == "prometheus":
                continue  # a live panel: see test_the_live_panels_query_...
            (target,) = panel["targets"]
            assert target["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
            assert target["editorType"] == "sql"
            assert (target["format"], target["queryType"]) == (
                (0, "timeseries") if panel["type"] == "timeseries" else (1, "table")
            )
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
        store = [p for p in board["panels"] if p["datasource"]["type"] != "prometheus"]
        assert len(store) == len(spec.panels)
        assert len(board["panels"]) == len(spec.panels) + len(spec.live_panels)
        assert sum(
            1 for p in store if re.search(r"\$__timeFilter", p["targets"][0]["rawSql"])
        ) == len(store), f"{spec.uid}: every panel follows the time picker"


def test_provisioning_matches_compose_mounts() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = dict(m.rsplit(":", 1)[0].split(":", 1) for m in grafana["volumes"])
    assert mounts["./dashboards/grafana/provisioning"] == "/etc/grafana/provisioning"
    for host in mounts:
        assert (ROOT / host).is_dir(), host
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/llmpulse.yaml").read_text())["providers"][0]
    assert provider["options"]["path"] == mounts["./dashboards/grafana/dashboards"]
    assert provider["folder"] == FOLDER_TITLE
    source = yaml.safe_load((GRAFANA / "provisioning/datasources/clickhouse.yaml").read_text())[
        "datasources"
    ][0]
    assert source["uid"] == DATASOURCE_UID and source["type"] == DATASOURCE_TYPE
    placeholders = set(re.findall(r"\$\{(\w+)\}", json.dumps(source)))
    assert placeholders <= set(grafana["environment"]), "every credential comes from Grafana's environment"
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]


def test_alert_rules_file_holds_every_rule_with_its_threshold() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/alerting/llmpulse-rules.yaml").read_text())
    (group,) = provisioned["groups"]
    assert group["folder"] == FOLDER_TITLE
    rules = {r["uid"]: r for r in group["rules"]}
    expected = alert_rules(AlertThresholds()) + pipeline_alert_rules()
    assert (
        set(rules)
        == {r.uid for r in expected}
        == {
            "llmpulse-freshness-p99",
            "llmpulse-dead-letter-rate",
            "llmpulse-silent-source",
            "llmpulse-drift",
            "llmpulse-toxicity-rate",
            "llmpulse-guardrail-violation-rate",
            "llmpulse-error-rate",
            "llmpulse-p95-latency",
            "llmpulse-cost-per-hour",
        }
    )
    for spec in expected:
        rule = rules[spec.uid]
        query, condition = rule["data"]
        assert query["datasourceUid"] == DATASOURCE_UID and query["model"]["rawSql"] == spec.sql
        assert query["relativeTimeRange"] == {"from": spec.lookback_minutes * 60, "to": 0}
        assert condition["datasourceUid"] == "__expr__" and rule["condition"] == condition["refId"]
        (threshold,) = condition["model"]["conditions"]
        assert threshold["evaluator"] == {"type": "gt", "params": [spec.threshold]}
        assert "folderUID" not in rule and rule["for"].endswith("m")


def test_the_live_panels_query_the_metrics_and_labels_that_the_services_serve() -> None:
    """Every Prometheus panel names metrics and labels that ``/metrics`` exposes (the
    workers' and the sink's ``PipelineMetrics``), and points at the provisioned source."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from llmpulse.dashboards.grafana import dashboard_json
    from llmpulse.dashboards.pipeline_board import LIVE_PANELS, PIPELINE
    from llmpulse.schemas.health import PipelineMetrics

    metrics = PipelineMetrics("sink")
    metrics.records_in.inc()
    metrics.events_in.inc()
    metrics.events_out("calls")
    metrics.dead_letter("malformed_json")
    metrics.set_lag("llm.enriched", 0, 3)
    metrics.freshness_processed.observe(0.5)
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    assert LIVE_PANELS and PIPELINE.live_panels == LIVE_PANELS
    for panel in LIVE_PANELS:
        for expr, legend in panel.queries:
            names = re.findall(r"\b(llmpulse_[a-z_]+)\b", expr)
            assert names and all(name in labels for name in names), (panel.key, expr)
            grouped = {g.strip() for by in re.findall(r"by \(([^)]*)\)", expr)
                       for g in by.split(",")}
            assert grouped <= set.union(*(labels[n] for n in names)), (panel.key, expr)
            assert set(re.findall(r"\{\{(\w+)\}\}", legend)) <= grouped, (panel.key, legend)

    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    board = dashboard_json(PIPELINE)
    live = [p for p in board["panels"] if p["datasource"]["type"] == "prometheus"]
    assert [p["title"] for p in live] == [p.title for p in LIVE_PANELS]
    assert {t["datasource"]["uid"] for p in live for t in p["targets"]} == {uid}
    assert [t["expr"] for t in live[0]["targets"]] == [q for q, _ in LIVE_PANELS[0].queries]
