"""How a worker runs: ``WorkerSettings`` and the ``LLMPULSE_*`` variables that set them.

Example:
    >>> from llmpulse.processors.worker.settings import WorkerSettings
    >>> settings = WorkerSettings("127.0.0.1:9092", topic_prefix="t1.")
    >>> settings.app_id, settings.topic("llm.prompts")
    ('t1.llmpulse-processors', 't1.llm.prompts')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from llmpulse.schemas import DLQ_PAYLOAD_MAX_BYTES, Limits
from llmpulse.schemas import environment as env
from llmpulse.schemas.topics import topic_name

__all__ = ["WorkerSettings", "settings_from_env"]


@dataclass
class WorkerSettings:
    """How a worker runs. Production defaults; the tests shorten the timeouts."""

    bootstrap_servers: str
    app_id: str = "llmpulse-processors"
    topic_prefix: str = ""
    partitions: int = 6
    """Partitions of the input topics (the join table's changelog gets as many)."""
    replication_factor: int = 1
    role: str = "all"
    """``all`` (join + spans + heavy + drift), ``light`` (join and spans), ``heavy`` (model scorers only),
    ``drift`` (drift windows and alert rules only)."""
    heavy: bool = True
    """Run the model scorers (False: the light output is final)."""
    drift: bool = True
    """Run the drift agent and the alert rules (``role`` all or drift)."""
    join_timeout_s: float = 300.0
    join_batch_records: int = 200
    """Records taken at once by the join agent (each may hold hundreds of events)."""
    join_batch_wait_s: float = 0.05
    """Longest wait to fill a micro-batch of the join agent."""
    join_linger_s: float = 3.0
    """How long a lonely half waits in memory (its record unacknowledged) before it is
    written to the join table; 0 writes at once. Most partners arrive within a few
    records, so this spares the table and changelog nearly every write."""
    expiry_check_s: float = 5.0
    standby_replicas: int = 0
    """Warm copies of each table partition on other workers (Faust's standby replicas).
    0: a worker that takes over a partition recovers its table from the changelog (a few
    seconds). 1: faster take-over, but every worker also reads and applies the other
    workers' changelogs, which cost two workers on two partitions about half their
    throughput here (``benchmarks/worker_throughput.py``)."""
    dlq_payload_max_bytes: int = DLQ_PAYLOAD_MAX_BYTES
    limits: Limits = field(default_factory=Limits.from_env)
    """What validation accepts (``LLMPULSE_LIMIT_*``, read as the sink reads them): the
    timestamp window, the sizes. Every agent decodes with these."""
    datadir: str = field(default_factory=lambda: os.path.join(os.getcwd(), "llmpulse-worker-data"))
    # Consumer-group timing. Production: Kafka's defaults (session 45 s, heartbeat 3 s,
    # rebalance 60 s, 3 s recovery delay). Tests: a few seconds so a worker starts fast.
    session_timeout_s: float = 45.0
    heartbeat_s: float = 3.0
    rebalance_timeout_s: float = 60.0
    recovery_delay_s: float = 3.0
    commit_interval_s: float = 2.8
    stall_s: float = 120.0
    """The watchdog: records wait on assigned partitions, none arrives for this long and the
    lag does not shrink: the worker exits non-zero to be restarted (0: no watchdog)."""

    @classmethod
    def fast(cls, **kw: Any) -> WorkerSettings:
        """Settings for tests and the embedded demo: short timeouts, quick start."""
        return cls(session_timeout_s=6.0, heartbeat_s=0.5, rebalance_timeout_s=6.0,
                   recovery_delay_s=0.0, commit_interval_s=0.5, expiry_check_s=0.5, **kw)

    def __post_init__(self) -> None:
        # The consumer group and the changelog topic are named after the app id: keep
        # deployments that share a broker through a topic prefix apart there too.
        if self.topic_prefix and not self.app_id.startswith(self.topic_prefix):
            self.app_id = f"{self.topic_prefix}{self.app_id}"

    def topic(self, base: str) -> str:
        return topic_name(base, self.topic_prefix)


def settings_from_env(**overrides: Any) -> WorkerSettings:
    """Settings from ``LLMPULSE_*`` variables, then the keywords given."""
    values: dict[str, Any] = {}
    if os.environ.get(env.BOOTSTRAP_SERVERS):
        values["bootstrap_servers"] = os.environ[env.BOOTSTRAP_SERVERS]
    if os.environ.get(env.TOPIC_PREFIX):
        values["topic_prefix"] = os.environ[env.TOPIC_PREFIX]
    if os.environ.get(env.TOPIC_PARTITIONS):
        values["partitions"] = int(os.environ[env.TOPIC_PARTITIONS])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return WorkerSettings(**values)
