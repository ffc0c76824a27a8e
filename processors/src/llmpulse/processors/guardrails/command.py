"""``llmpulse guardrails prepare``: compile a guardrail policy's Hyperscan gates into the gate cache.

Compiling the default policy's gates (the policy's one-pass gate and the injection rule's
de-obfuscation gate) costs about two CPU minutes on a machine whose gate cache is cold
(``guardrails._gate_cache``); a worker that finds them in the cache loads them in a second.
``scripts/setup.sh`` and the image's build run this command once, so no worker, demo or test
pays the compile at its start.

Example:
    $ llmpulse guardrails prepare                     # the shipped default policy
    $ llmpulse guardrails prepare --policy my-policy.yaml
    $ llmpulse-processors guardrails prepare          # the same, from this distribution alone
"""

from __future__ import annotations

import time

import click

__all__ = ["guardrails"]


@click.group("guardrails")
def guardrails() -> None:
    """Guardrail policies: compile their gates ahead of the workers."""


@guardrails.command("prepare")
@click.option("--policy", "policy_path", default=None, type=click.Path(dir_okay=False, exists=True),
              help="A policy file (default: the shipped default policy).")
def prepare(policy_path: str | None) -> None:
    """Compile the policy's gates into the gate cache (a second when they are there already)."""
    from llmpulse.processors.guardrails._gate_cache import cache_folder
    from llmpulse.processors.guardrails.policy import GuardrailPolicy

    wall, cpu = time.perf_counter(), time.process_time()
    GuardrailPolicy.load(policy_path).prepare()
    click.echo(f"guardrails prepare: {policy_path or 'the default policy'}'s gates are in {cache_folder()} "
               f"({time.perf_counter() - wall:.1f} s, {time.process_time() - cpu:.1f} CPU s)")
