"""``llmpulse dashboards push`` against a local HTTP server that plays Grafana's API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from llmpulse.dashboards.alerts import AlertThresholds
from llmpulse.dashboards.cli import dashboards as dashboards_cli
from llmpulse.dashboards.definitions import DASHBOARDS
from llmpulse.dashboards.push import PushError, clickhouse_datasource, push

TOKEN = "glsa_test_token"


@dataclass
class FakeGrafana:
    """Grafana's folder, data source, dashboard and alert-rule provisioning endpoints, in memory."""

    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    url: str = ""

    def handle(self, method: str, path: str, headers: Any, body: dict[str, Any] | None) -> tuple[int, Any]:
        self.requests.append((method, path))
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Unauthorized"}
        if method in ("POST", "PUT") and "application/json" not in headers.get("Content-Type", ""):
            self.problems.append(f"{method} {path} without a JSON body")
        parts = path.strip("/").split("/")
        match method, parts:
            case "GET", ["api", "folders", uid]:
                return (
                    (200, self.folders[uid])
                    if uid in self.folders
                    else (404, {"message": "folder not found"})
                )
            case "POST", ["api", "folders"]:
                if body["uid"] in self.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                self.folders[body["uid"]] = body
                return 200, body
            case "GET", ["api", "datasources", "uid", uid]:
                return (
                    (200, self.datasources[uid])
                    if uid in self.datasources
                    else (404, {"message": "not found"})
                )
            case "POST", ["api", "datasources"]:
                if body["uid"] in self.datasources:
                    return 409, {"message": "data source with the same uid already exists"}
                self.datasources[body["uid"]] = body
                return 200, {"datasource": body}
            case "PUT", ["api", "datasources", "uid", uid]:
                if uid not in self.datasources:
                    return 404, {"message": "not found"}
                self.datasources[uid] = body
                return 200, {"datasource": body}
            case "POST", ["api", "dashboards", "db"]:
                board = body["dashboard"]
                if board["uid"] in self.dashboards and not body.get("overwrite"):
                    return 412, {"status": "version-mismatch"}
                if body.get("folderUid") not in self.folders:
                    return 400, {"message": "folder not found"}
                if board.get("id") is not None:
                    self.problems.append("dashboard sent with an id")
                self.dashboards[board["uid"]] = body
                return 200, {"status": "success", "uid": board["uid"]}
            case "GET", ["api", "v1", "provisioning", "alert-rules", uid]:
                return (200, self.rules[uid]) if uid in self.rules else (404, {"message": "rule not found"})
            case "POST", ["api", "v1", "provisioning", "alert-rules"]:
                if body["uid"] in self.rules:
                    return 409, {"message": "rule exists"}
                if body.get("folderUID") not in self.folders:
                    return 400, {"message": "folder not found"}
                self.rules[body["uid"]] = body
                return 201, body
            case "PUT", ["api", "v1", "provisioning", "alert-rules", uid]:
                if uid not in self.rules:
                    return 404, {"message": "rule not found"}
                self.rules[uid] = body
                return 200, body
        self.problems.append(f"unexpected {method} {path}")
        return 404, {"message": "unknown endpoint"}


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = fake.handle(self.command, self.path.split("?")[0], self.headers, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def test_push_creates_then_overwrites_by_uid(grafana: FakeGrafana) -> None:
    source = clickhouse_datasource("http://llmpulse:s3cret@clickhouse:8123/llmpulse")
    first = push(grafana.url, TOKEN, datasource=source, thresholds=AlertThresholds())
    assert (first.folder, first.datasource) == ("created", "created")
    assert set(first.alert_rules.values()) == {"created"} and len(first.alert_rules) == 6
    assert set(grafana.dashboards) == {d.uid for d in DASHBOARDS}
    saved = grafana.dashboards["llmpulse-overview"]
    assert saved["overwrite"] is True and saved["folderUid"] == "llmpulse"
    assert {t["datasource"]["uid"] for p in saved["dashboard"]["panels"] for t in p["targets"]} == {
        "llmpulse-clickhouse"
    }
    stored = grafana.datasources["llmpulse-clickhouse"]
    assert stored["type"] == "grafana-clickhouse-datasource"
    assert stored["jsonData"] | {"secure": False} == {
        "host": "clickhouse",
        "port": 8123,
        "protocol": "http",
        "secure": False,
        "username": "llmpulse",
        "defaultDatabase": "llmpulse",
    }
    assert stored["secureJsonData"] == {"password": "s3cret"}
    rule = grafana.rules["llmpulse-error-rate"]
    assert rule["folderUID"] == "llmpulse" and rule["ruleGroup"] == "llmpulse" and rule["condition"] == "C"
    state = json.dumps(
        [grafana.folders, grafana.datasources, grafana.dashboards, grafana.rules], sort_keys=True
    )

    grafana.requests.clear()
    second = push(grafana.url, TOKEN, datasource=source, thresholds=AlertThresholds())
    assert (second.folder, second.datasource) == ("unchanged", "updated")
    assert set(second.alert_rules.values()) == {"updated"}
    assert (
        json.dumps([grafana.folders, grafana.datasources, grafana.dashboards, grafana.rules], sort_keys=True)
        == state
    ), "a second push changes nothing"
    creates = [r for r in grafana.requests if r[0] == "POST" and r[1] != "/api/dashboards/db"]
    assert creates == [], creates
    assert not grafana.problems, grafana.problems


def test_thresholds_reach_the_pushed_rules(grafana: FakeGrafana) -> None:
    push(grafana.url, TOKEN, thresholds=AlertThresholds(error_rate=0.2))
    condition = grafana.rules["llmpulse-error-rate"]["data"][1]["model"]["conditions"][0]
    assert condition["evaluator"] == {"type": "gt", "params": [0.2]}
    assert grafana.datasources == {}  # no data source given: left alone


def test_refusals_are_reported_by_name(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError, match="read folder: Grafana answered 401"):
        push(grafana.url, "wrong-token")
    with pytest.raises(PushError, match="read folder"):
        push("http://127.0.0.1:9", TOKEN, timeout=2)


def test_push_command(grafana: FakeGrafana) -> None:
    runner = CliRunner()
    args = [
        "push",
        "--grafana-url",
        grafana.url,
        "--token",
        TOKEN,
        "--clickhouse",
        "http://llmpulse:pw@clickhouse:8123/llmpulse",
        "--threshold",
        "p95_latency_ms=3000",
    ]
    result = runner.invoke(dashboards_cli, args)
    assert result.exit_code == 0, result.output
    assert "data source created" in result.output and "llmpulse-versions: success" in result.output
    condition = grafana.rules["llmpulse-p95-latency"]["data"][1]["model"]["conditions"][0]
    assert condition["evaluator"]["params"] == [3000.0]
    embedded = runner.invoke(
        dashboards_cli,
        ["push", "--grafana-url", grafana.url, "--token", TOKEN, "--clickhouse", "chdb:///tmp/x.chdb"],
    )
    assert embedded.exit_code == 2 and "ClickHouse server URL" in embedded.output
    bad = runner.invoke(dashboards_cli, [*args[:-1], "p95_latency=3000"])
    assert bad.exit_code == 2 and "unknown alert threshold" in bad.output
