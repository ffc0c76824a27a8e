"""``llmpulse db migrate|status`` as an operator runs them."""

from __future__ import annotations

from click.testing import CliRunner

from llmpulse.cli.main import main
from llmpulse.sinks.store import Store


def test_db_migrate_is_safe_to_run_twice_and_status_lists_every_migration(store_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["db", "migrate", "--clickhouse", store_url, "--text-days", "14"])
    assert first.exit_code == 0, first.output
    assert first.output.count("applied  ") == 6 and "retention text_days = 14" in first.output
    second = runner.invoke(main, ["db", "migrate", "--clickhouse", store_url, "--text-days", "14"])
    assert second.exit_code == 0, second.output
    assert "up to date" in second.output and "retention" not in second.output
    status = runner.invoke(main, ["db", "status", "--clickhouse", store_url])
    assert status.exit_code == 0, status.output
    assert [line.split()[:2] for line in status.output.splitlines()[1:]] == [
        ["applied", "0001_raw_tables"], ["applied", "0002_rollups"], ["applied", "0003_evaluation"],
        ["applied", "0004_eval_sources"], ["applied", "0005_prompt_registry"],
        ["applied", "0006_agents"]]
    with Store.open(store_url) as store:
        ddl = store.query("SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
                          "AND name = 'calls'").scalar()
    assert "`response_text` String TTL toDateTime(occurred_at) + toIntervalDay(14)" in ddl


def test_db_status_on_an_empty_database_shows_pending_migrations(store_url: str) -> None:
    result = CliRunner().invoke(main, ["db", "status", "--clickhouse", store_url])
    assert result.exit_code == 0, result.output
    assert result.output.count("pending") == 6


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    result = CliRunner().invoke(main, ["db", "migrate", "--clickhouse", "http://u:topsecret@127.0.0.1:9/x"])
    assert result.exit_code != 0
    assert "cannot reach" in result.output and "topsecret" not in result.output
