"""The Faust worker: thin agents around the plain-Python processing step.

Agents:

- ``join``: reads ``llm.prompts`` and ``llm.responses`` (batch records or single
  events), validates every event (failures go to ``llm.dlq`` with the reason, source
  topic, partition and offset), joins prompt and response by ``call_id`` in a Faust
  table backed by a changelog topic, runs the light scorers and the guardrails' text
  rules, and hands the calls on.
- ``heavy``: model scorers (toxicity, embeddings, readability) on micro-batches
  (``take(N, within=T)`` from the scorers' settings), in a thread so the event loop and
  the light path keep going. With ``role="light"`` and ``role="heavy"`` the two run in
  separate processes and consumer groups.
- a timer expires halves whose partner did not come within ``join_timeout_s``: they
  are emitted as incomplete calls, not lost.

- ``spans``: reads ``llm.spans`` (tool executions, agent steps; keyed by trace id),
  validates, checks each span against its trace (tool arguments that are not JSON, tool
  errors, loops) and runs the guardrails on tool arguments and results.

Finished calls and spans go to ``llm.enriched`` and their verdicts to ``llm.alerts``.

The parts: ``settings`` (``WorkerSettings``), ``faust_app`` (the app, its topics and every
Faust override), ``light_agent``, ``span_agent``, ``heavy_agent``, ``drift_agent``, ``outputs`` (the sends)
and ``app`` (``build_app``). The work itself is ``llmpulse.processors.step``.

Example:
    $ llmpulse worker --bootstrap-servers 127.0.0.1:9092
"""

from llmpulse.processors.worker.app import build_app
from llmpulse.processors.worker.settings import WorkerSettings, settings_from_env

__all__ = ["WorkerSettings", "build_app", "settings_from_env"]
