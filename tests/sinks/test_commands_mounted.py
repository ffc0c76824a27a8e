"""The umbrella `llmpulse` command carries the sink room's commands."""

from __future__ import annotations

from click.testing import CliRunner

from llmpulse.cli.main import main


def test_llmpulse_mounts_sink_and_db_with_their_environment_variables() -> None:
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0 and "sink" in top.output and "db" in top.output
    sink = runner.invoke(main, ["sink", "--help"])
    assert sink.exit_code == 0
    for variable in ("LLMPULSE_BOOTSTRAP_SERVERS", "LLMPULSE_CLICKHOUSE_URL", "LLMPULSE_SINK_BATCH_ROWS"):
        assert variable in sink.output
    migrate = runner.invoke(main, ["db", "migrate", "--help"])
    assert migrate.exit_code == 0 and "LLMPULSE_RETENTION_TEXT_DAYS" in migrate.output
