"""CallJoiner: pairs in a batch, through the store, lingering in memory, and expiry."""

from __future__ import annotations

from llmpulse.processors.join import CallJoiner, DictJoinStore
from llmpulse.schemas import PromptEvent, ResponseEvent


def _prompt(call_id: str) -> PromptEvent:
    return PromptEvent(call_id=call_id, app="a")


def _response(call_id: str) -> ResponseEvent:
    return ResponseEvent(call_id=call_id, app="a", text=f"answer {call_id}", latency_ms=1.0)


class Record:
    """Stands in for the worker's Kafka message (a source the joiner holds)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def test_halves_in_one_batch_pair_without_the_store() -> None:
    store = DictJoinStore()
    joiner = CallJoiner(store)
    pairs = joiner.add_many([(_response("c1"), 0), (_prompt("c2"), 1), (_prompt("c1"), 0)],
                            now=10.0)
    assert [(p.prompt.call_id, p.response.text) for p in pairs] == [("c1", "answer c1")]
    assert list(store) == ["c2"] and joiner.stored == 1
    pair = joiner.add(_response("c2"), now=11.0, partition=1)
    assert pair is not None and pair.prompt.call_id == "c2" and len(store) == 0


def test_lingering_halves_meet_across_records_and_never_touch_the_store() -> None:
    store = DictJoinStore()
    joiner = CallJoiner(store, linger_s=1.0)
    prompts, responses = Record("prompts"), Record("responses")
    assert joiner.add_many([(_prompt(f"c{i}"), 0) for i in range(100)], now=0.0,
                           source=prompts) == []
    assert joiner.lingering == 100 and len(store) == 0
    assert joiner.pin_holding([prompts]) == [prompts]  # the worker keeps it unacknowledged
    assert joiner.pin_holding([prompts]) == []  # pinned once
    pairs = joiner.add_many([(_response(f"c{i}"), 0) for i in range(100)], now=0.3,
                            source=responses)
    assert len(pairs) == 100 and joiner.lingering == 0
    assert joiner.settle(now=0.3) == [prompts]  # every half paired: release the record
    assert joiner.stored == 0 and len(store) == 0


def test_a_half_that_lingers_too_long_goes_to_the_store_then_its_record_is_released() -> None:
    store = DictJoinStore()
    joiner = CallJoiner(store, linger_s=1.0)
    record = Record("r")
    joiner.add_many([(_prompt("a"), 2), (_prompt("b"), 2)], now=0.0, source=record)
    joiner.pin_holding([record])
    joiner.add_many([(_response("a"), 2)], now=0.5, source=Record("other"))
    assert joiner.settle(now=0.9) == []  # "b" still lingers: the record is held
    assert joiner.settle(now=1.2) == [record]
    assert list(store) == ["b"] and joiner.stored == 1
    pair = joiner.add(_response("b"), now=5.0, partition=2)  # its partner comes later
    assert pair is not None and pair.prompt.call_id == "b" and len(store) == 0


def test_halves_of_a_lost_partition_are_dropped_and_their_record_never_released() -> None:
    store = DictJoinStore()
    joiner = CallJoiner(store, linger_s=1.0)
    mine, lost = Record("mine"), Record("lost")
    joiner.add_many([(_prompt("m"), 0)], now=0.0, source=mine)
    joiner.add_many([(_prompt("x"), 1)], now=0.0, source=lost)
    joiner.pin_holding([mine, lost])
    released = joiner.settle(now=2.0, owned={0}.__contains__)
    assert released == [mine]  # the lost partition's record is read again by its new owner
    assert list(store) == ["m"] and joiner.lingering == 0


def test_duplicates_the_newer_half_wins_and_expiry_emits_incomplete_calls() -> None:
    joiner = CallJoiner(linger_s=1.0)
    first, second = Record("first"), Record("second")
    joiner.add_many([(_prompt("d"), 0)], now=0.0, source=first)
    joiner.add_many([(_prompt("d"), 0)], now=0.1, source=second)
    assert joiner.duplicates == 1 and joiner.lingering == 1
    assert joiner.pin_holding([first, second]) == [second]  # first holds nothing now
    assert joiner.settle(now=1.5) == [second]
    expired = joiner.expire(now=100.0, timeout_s=60.0)
    assert [(p.prompt.call_id, p.incomplete_reason) for p in expired] == [
        ("d", "response_timeout")]
    assert len(joiner) == 0


def test_without_a_source_nothing_lingers() -> None:
    joiner = CallJoiner(linger_s=1.0)  # replay and the demo join whole batches
    joiner.add_many([(_prompt("p"), 0)], now=0.0)
    assert joiner.lingering == 0 and joiner.stored == 1


def test_settle_everything_at_shutdown_stores_all_and_releases_every_held_record() -> None:
    store = DictJoinStore()
    joiner = CallJoiner(store, linger_s=3.0)
    records = [Record(f"r{i}") for i in range(3)]
    for i, record in enumerate(records):
        joiner.add_many([(_prompt(f"c{i}"), 0)], now=float(i), source=record)
    assert joiner.pin_holding(records) == records
    assert joiner.settle(now=2.5) == []  # nothing waited 3 s yet
    assert joiner.settle(now=float("inf")) == records  # a rebalance or a stop: all of them
    assert sorted(store) == ["c0", "c1", "c2"] and joiner.lingering == 0
