"""A line every request would repeat is let through when it starts, then once per interval, with
the count of the lines held back meanwhile."""

from __future__ import annotations

import time

from django_pi_payments.logs import Occasionally


def test_a_repeated_line_is_let_through_once_per_interval_with_the_count_held_back() -> None:
    lines = Occasionally(0.2)
    assert lines.due("read") == ""
    assert [lines.due("read") for _ in range(3)] == [None, None, None]
    assert lines.due("write") == ""  # each key on its own
    time.sleep(0.25)
    assert lines.due("read") == " (3 more since the last such line)"
    assert lines.due("read") is None
