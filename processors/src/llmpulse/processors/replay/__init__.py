"""Replay: re-run a range of recorded calls through another scorer set, guardrail policy
or prompt version, and keep the results in the evaluation tables.

The parts: ``kafka_range`` (reading a range of history), ``candidate`` (a prompt version
answered again by a model), ``run`` (the run itself, around the processing step); the
result rows are ``llmpulse.sinks.eval_rows``.

The range is read with a consumer group of its own (``llmpulse-replay-<run id>``) and
partitions assigned explicitly (no subscribe, no commits), so the production consumer
groups never see it. Calls are joined as in the worker (``CallJoiner``), then each call is
written twice to ``eval_results``: variant ``baseline`` (the call as recorded, scored with
the baseline configuration) and ``candidate`` (rescored with the candidate configuration
and policy, or answered again by the candidate prompt version and scored). Each row names
its source record (topic, partition, offset); the run's row in ``eval_runs`` holds the
range, the versions and the configuration. A run id can be given again to resume: calls
whose candidate row is already stored are skipped, so nothing is written twice.

Example (not a doctest: it needs a broker)::

    from datetime import UTC, datetime
    from llmpulse.processors import Enricher, load_config
    from llmpulse.processors.replay import ReplaySource, replay, topics_for
    from llmpulse.sinks.store import Store

    source = ReplaySource("127.0.0.1:9092", topics_for(""),
                          start=datetime(2026, 1, 1, tzinfo=UTC),
                          end=datetime(2026, 1, 2, tzinfo=UTC))
    with Store.open("chdb:///tmp/llmpulse") as store:
        result = replay(store, source, candidate=Enricher(load_config("strict.yaml")),
                        baseline=Enricher(load_config()), run_id="strict-policy-1")
    result.calls, result.status          # (1250, 'done')

    $ llmpulse replay --from 2026-01-01T00:00 --to 2026-01-02T00:00 --policy strict.yaml
    $ llmpulse replay --from-offset 0 --to-offset 5000 --prompt-dir prompts \\
          --candidate answer@staging --model-url http://localhost:8000/v1 --model gpt-4o-mini
    $ llmpulse replay --run-id r-20260101-ab12 ...     # resume an interrupted run
"""

from llmpulse.processors.errors import missing_dependency

try:  # replay writes with the sinks' row mappings: the `replay` extra brings them
    import llmpulse.sinks.eval_rows  # noqa: F401
except ImportError:
    raise missing_dependency("llmpulse-sinks", "replay", extra="replay") from None

from llmpulse.processors.replay.candidate import CandidatePrompt, ChatModel
from llmpulse.processors.replay.kafka_range import (
    ReplayError,
    ReplaySource,
    SourceRef,
    read_events,
    read_range,
    read_records,
    topics_for,
)
from llmpulse.processors.replay.run import (
    BASELINE,
    CANDIDATE,
    ReplayResult,
    done_calls,
    new_run_id,
    replay,
)
from llmpulse.sinks.eval_rows import RESULT_COLUMNS, RUN_COLUMNS, result_row

__all__ = [
    "BASELINE",
    "CANDIDATE",
    "RESULT_COLUMNS",
    "RUN_COLUMNS",
    "CandidatePrompt",
    "ChatModel",
    "ReplayError",
    "ReplayResult",
    "ReplaySource",
    "SourceRef",
    "done_calls",
    "new_run_id",
    "read_events",
    "read_range",
    "read_records",
    "replay",
    "result_row",
    "topics_for",
]
