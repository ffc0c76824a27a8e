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

Finished calls go to ``llm.enriched`` and their guardrail verdicts to ``llm.alerts``.

The parts: ``settings`` (``WorkerSettings``), ``faust_app`` (the app, its topics and every
Faust override), ``light_agent``, ``heavy_agent``, ``drift_agent``, ``outputs`` (the sends)
and ``app`` (``build_app``). The work itself is ``llmpulse.processors.step``.

Example:
    $ llmpulse worker --bootstrap-servers 127.0.0.1:9092
"""

from llmpulse.processors.worker.app import build_app
from llmpulse.processors.worker.settings import WorkerSettings, settings_from_env

__all__ = ["WorkerSettings", "build_app", "settings_from_env"]
