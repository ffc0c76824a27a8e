"""What a long-running llmpulse process does once its start-up is over.

A worker, the OTLP stage and the sink build a large heap at start-up that lives as long as
the process: imported modules, the configuration, compiled guardrail rules, genai-prices'
table (some 26,000 objects), the Faust app or the store's client. Python's cycle collector
walks every tracked object of the oldest generation at each full (generation 2)
collection, and a busy service makes one every few thousand events, so each walked that
start-up heap again (~30-75 ms a time) and charged it to whatever event was being handled.
``freeze_start_heap`` moves that heap into the collector's permanent generation
(``gc.freeze``) once, right before the service starts its loop.

Example (a service's entry point; not a doctest, it would freeze the test process)::

    from llmpulse.schemas.runtime import freeze_start_heap

    app = build_app(settings)        # everything made at start-up ...
    frozen = freeze_start_heap()     # ... leaves every later full collection
    logger.info("start-up heap frozen: %d objects", frozen)
    run(app)                         # the loop: events come and go as before
"""

from __future__ import annotations

import gc

__all__ = ["freeze_start_heap"]


def freeze_start_heap() -> int:
    """Collect once, then move every object tracked so far into the cycle collector's
    permanent generation (``gc.freeze``), out of every later collection's walk.

    Call it once per process, at the end of start-up, just before the service's loop.
    Reference counting frees what a frozen object stops holding as before; the only cost is
    that a reference cycle made before the call that becomes garbage later is never
    collected, which is why the call comes after the start-up (whose objects live as long as
    the process) and the ``gc.collect()`` first (no garbage of start-up is frozen).

    Returns:
        How many objects the permanent generation holds now (``gc.get_freeze_count()``).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
