"""docker-compose.yml is valid and in step with the code (no Docker engine runs here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from llmpulse.schemas import environment as env

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_docker_compose_config_accepts_the_file() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is missing: .ci/run installs Debian's docker-compose package")
    result = subprocess.run([exe, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_stack_has_every_service_with_health_checks() -> None:
    services = _compose()["services"]
    assert {"kafka", "clickhouse", "grafana", "worker", "sink", "topics"} <= set(services)
    for name in ("kafka", "clickhouse", "grafana", "worker", "sink", "prometheus", "otlp",
                 "otelcol-health"):
        assert "healthcheck" in services[name], name
    for name, port in (("worker", 9465), ("sink", 9464), ("otlp", 9466)):  # their health address
        assert services[name]["environment"][env.HEALTH_ADDRESS] == f"0.0.0.0:{port}"
        assert f"127.0.0.1:{port}/readyz" in " ".join(services[name]["healthcheck"]["test"])
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "grafana-clickhouse-datasource" in services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    assert services["worker"]["command"] == ["llmpulse", "worker"]
    assert services["sink"]["command"] == ["llmpulse", "sink"]
    assert services["topics"]["command"] == ["llmpulse", "topics", "create"]


def test_llmpulse_variables_in_compose_are_the_ones_the_code_reads() -> None:
    known = {getattr(env, name) for name in env.__all__ if not name.endswith("_PREFIX")}
    used = set(re.findall(r"\b(LLMPULSE_[A-Z_]+)\s*:", COMPOSE.read_text(encoding="utf-8")))
    assert used, "compose passes no LLMPULSE_* settings"
    assert used <= known, f"unknown to llmpulse.schemas.environment: {used - known}"
    services = _compose()["services"]
    worker_env = services["worker"]["environment"]
    kafka_listeners = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT://{worker_env[env.BOOTSTRAP_SERVERS]}" in kafka_listeners


def test_mounted_paths_exist_in_the_repository() -> None:
    for service in _compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{source} is mounted but missing"
    datasource = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/datasources/clickhouse.yaml").read_text())
    assert datasource["datasources"][0]["type"] == "grafana-clickhouse-datasource"


def test_prometheus_scrapes_the_worker_the_sink_and_the_otlp_stage_with_the_health_token() -> None:
    services = _compose()["services"]
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]}
    assert targets == {"worker:9465", "sink:9464", "otlp:9466"}
    token = services["worker"]["environment"][env.HEALTH_TOKEN]
    for job in config["scrape_configs"]:
        assert token.endswith(f":-{job['authorization']['credentials']}}}"), (token, job)
    grafana = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/datasources/prometheus.yaml").read_text())
    assert grafana["datasources"][0]["url"] == "http://prometheus:9090"


def test_the_mounted_worker_configuration_is_valid() -> None:
    from llmpulse.processors.alerting import load_alert_config
    from llmpulse.processors.config import load_config
    from llmpulse.processors.drift.config import load_drift_config

    path = ROOT / "deploy" / "llmpulse.yaml"
    assert load_config(path, environ={}).scoring.embeddings.sample_rate == 0.25
    assert load_drift_config(path, environ={}).window_calls == 1000
    assert load_alert_config(path, environ={}).cooldown_seconds == 900


def test_prometheus_rules_use_the_metrics_the_services_serve() -> None:
    from llmpulse.schemas.health import PipelineMetrics

    served = {m.name for m in PipelineMetrics("x").registry.collect()}
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    mounted = {v.split(":")[1]: v.split(":")[0] for v in
               _compose()["services"]["prometheus"]["volumes"] if v.startswith("./")}
    (rules_file,) = config["rule_files"]
    rules = yaml.safe_load((ROOT / mounted[rules_file]).read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {m for e in exprs for m in re.findall(r"\b(llmpulse_[a-z_]+)", e)}
    assert used and used <= served, used - served


def test_the_collector_runs_the_official_contrib_image_with_the_tested_config() -> None:
    services = _compose()["services"]
    collector = services["otelcol"]
    assert collector["image"].startswith("otel/opentelemetry-collector-contrib:0.165.")
    assert "./deploy/otelcol.yaml:/etc/otelcol/otelcol.yaml:ro" in collector["volumes"]
    assert services["otlp"]["command"] == ["llmpulse", "otlp", "run"]
    config = yaml.safe_load((ROOT / "deploy" / "otelcol.yaml").read_text(encoding="utf-8"))
    protocols = config["receivers"]["otlp"]["protocols"]
    assert {p["auth"]["authenticator"] for p in protocols.values()} == {"bearertokenauth"}
    assert config["exporters"]["kafka"]["traces"]["encoding"] == "otlp_proto"
    assert config["exporters"]["kafka"]["partition_traces_by_id"] is True
    # The image has no shell: the Collector's check runs in a sidecar in its network
    # namespace, against the telemetry endpoint the config serves there.
    sidecar = services["otelcol-health"]
    assert sidecar["network_mode"] == "service:otelcol"
    telemetry = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
    port = re.fullmatch(r"\$\{env:LLMPULSE_OTEL_METRICS_PORT:-(\d+)\}",
                        str(telemetry["prometheus"]["port"]))
    assert port is not None and telemetry["prometheus"]["host"] == "127.0.0.1"
    assert f"http://127.0.0.1:{port.group(1)}/metrics" in " ".join(sidecar["healthcheck"]["test"])
    assert "LLMPULSE_OTEL_METRICS_PORT" not in collector["environment"]


def test_the_models_are_fetched_once_before_the_workers_and_mounted_read_only() -> None:
    compose = _compose()
    services = compose["services"]
    models = services["models"]
    # a one-shot job on the image that has torch (it exports to ONNX), writing the volume
    assert models["build"]["target"] == "models"
    assert models["restart"] == "no" and "healthcheck" not in models
    assert models["command"][:3] == ["llmpulse", "models", "fetch"]
    assert {"detoxify-original", "minilm"} <= set(models["command"])
    assert models["command"][models["command"].index("--dir") + 1] == "/models"
    assert "models:/models" in models["volumes"]
    assert "models" in compose["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "--extra ml" in dockerfile.split("AS models", 1)[1].split("FROM", 1)[0]
    # every service that runs the scorers waits for the fetch to succeed and reads the folder
    # read-only, where the configuration looks for it
    workers = {name: s for name, s in services.items() if s.get("command", [])[:2] == ["llmpulse", "worker"]}
    assert workers
    for name, service in workers.items():
        assert service["depends_on"]["models"] == {"condition": "service_completed_successfully"}, name
        assert "models:/models:ro" in service["volumes"], name
        assert service["environment"][env.MODELS_DIR] == "/models", name
        assert service["build"] == ".", name  # the Dockerfile's last stage: openvino extra, no torch
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, re.MULTILINE)
    # OpenVINO and ONNX Runtime, no torch, no NNCF: the OpenVINO int8 models come from the fetch
    assert stages[-1] == "runtime" and "--extra openvino" in dockerfile.split("AS runtime", 1)[1]


def test_the_collector_user_owns_its_queue_and_can_read_the_tokens() -> None:
    """The contrib image runs as uid 10001: a root-owned named volume and a chmod-600 tokens
    file of another owner would give "permission denied" (contrib #40381, helm-charts #650).
    otelcol-init (root, before the Collector) gives the volume to the Collector's user and
    checks the tokens file, for the same user the Collector runs as."""
    services = _compose()["services"]
    collector, init = services["otelcol"], services["otelcol-init"]
    assert collector["user"] == "${OTELCOL_UID:-10001}:${OTELCOL_GID:-10001}"
    assert init["user"] == "0:0" and init["restart"] == "no"
    assert init["environment"] == {"OTELCOL_UID": "${OTELCOL_UID:-10001}",
                                   "OTELCOL_GID": "${OTELCOL_GID:-10001}"}
    assert collector["depends_on"]["otelcol-init"] == {"condition": "service_completed_successfully"}
    queue = collector["environment"]["LLMPULSE_OTEL_QUEUE_DIR"]
    tokens = collector["environment"]["LLMPULSE_OTEL_TOKENS_FILE"]
    assert f"otelcol-queue:{queue}" in collector["volumes"] and f"otelcol-queue:{queue}" in init["volumes"]
    assert init["secrets"] == collector["secrets"] == ["otel_tokens"] and tokens == "/run/secrets/otel_tokens"
    script = next(v.split(":")[1] for v in init["volumes"] if v.startswith("./deploy/otelcol-init.sh:"))
    assert init["command"] == ["sh", script, queue, tokens]


INIT = ROOT / "deploy" / "otelcol-init.sh"


def _init(queue: Path, tokens: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(INIT), str(queue), str(tokens)], capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown and setpriv need root, as in the container")
def test_the_init_script_gives_the_queue_to_uid_10001_and_checks_the_tokens() -> None:
    with tempfile.TemporaryDirectory() as folder:  # traversable by uid 10001, as /run/secrets
        Path(folder).chmod(0o755)
        _check_init(Path(folder) / "queue", Path(folder) / "otel-tokens")


def _check_init(queue: Path, tokens: Path) -> None:
    queue.mkdir()
    tokens.write_text("m2QyV0c1x8TnKw4Xk support-bot\n", encoding="utf-8")
    tokens.chmod(0o600)  # as the doc says; owned by root here, not by the Collector's user
    ran = _init(queue, tokens)
    assert ran.returncode == 1 and "not readable by the Collector's user 10001" in ran.stderr
    os.chown(tokens, 10001, -1)
    ran = _init(queue, tokens)
    assert ran.returncode == 0, ran.stderr
    assert (queue.stat().st_uid, queue.stat().st_gid) == (10001, 10001)
    # The Collector's user can now write its queue there.
    wrote = subprocess.run(["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups",
                            "touch", str(queue / "exporter_kafka__traces")], check=False)
    assert wrote.returncode == 0
    tokens.write_text("# <token> <app>\nm2QyV0c1x8TnKw4Xk support-bot\n", encoding="utf-8")
    ran = _init(queue, tokens)
    assert ran.returncode == 1 and "line 1:" in ran.stderr
