"""The runtime's shared timer thread (integrations/ipykernel/timers.py)."""

from __future__ import annotations

import threading

from integrations.ipykernel.timers import Timers


def test_calls_run_in_deadline_order_not_in_the_order_they_were_asked_for() -> None:
    timers, got, done = Timers("test-order"), [], threading.Event()
    timers.call_later(0.15, lambda: (got.append("late"), done.set()))
    timers.call_later(0.05, got.append, "early")  # earlier than the one the thread waits for
    assert done.wait(5)
    assert got == ["early", "late"]


def test_a_cancelled_call_does_not_run_and_a_failing_one_does_not_stop_the_rest() -> None:
    timers, got, done = Timers("test-cancel"), [], threading.Event()
    timers.call_later(0.02, got.append, "cancelled").cancel()
    timers.call_later(0.03, lambda: 1 / 0)
    timers.call_later(0.06, lambda: (got.append("after the failure"), done.set()))
    assert done.wait(5)
    assert got == ["after the failure"]


def test_one_thread_serves_every_call() -> None:
    timers, threads, done = Timers("test-one"), set(), threading.Event()
    for i in range(20):
        timers.call_later(0.001 * i, lambda: threads.add(threading.get_ident()))
    timers.call_later(0.05, done.set)
    assert done.wait(5)
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_stop_ends_the_thread_and_drops_what_was_scheduled_and_a_later_call_starts_anew() -> None:
    timers, got, done = Timers("test-stop"), [], threading.Event()
    timers.call_later(0.05, got.append, "dropped")
    timers.stop()
    assert not [t for t in threading.enumerate() if t.name == "test-stop"]
    timers.call_later(0.1, lambda: (got.append("after"), done.set()))
    assert done.wait(5)
    assert got == ["after"]
    timers.stop()
