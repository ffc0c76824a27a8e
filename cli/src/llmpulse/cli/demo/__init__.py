"""``llmpulse demo``: the main job on one machine.

A simulated support chatbot, instrumented with the SDK, answers a few thousand requests
with two prompt versions; users give feedback; halfway through, traffic drifts. The same
scorers, guardrails, drift and alert code as the workers process it, records go to chDB
on disk, and at the end an HTML report, the version comparison and the alerts that
fired show what happened. With ``--kafka`` the same simulation runs through the real
stack (SDK -> Kafka -> worker -> sink).

Example:
    $ llmpulse demo                       # embedded: no Kafka, ClickHouse or Grafana
    $ llmpulse demo --kafka 127.0.0.1:9092
"""

from llmpulse.cli.demo.command import demo

__all__ = ["demo"]
