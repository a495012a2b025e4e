"""One journal entry: the stage vocabulary and the Struct every store encodes, which an older
reader still decodes when a newer writer added a field."""

from __future__ import annotations

import msgspec
import pytest

from clicktrace.journal import Entry
from clicktrace.journal._entry import BROWSER_STAGES, STAGES


def test_the_stages_are_distinct_and_the_browser_ones_are_among_them() -> None:
    assert len(set(STAGES)) == len(STAGES)
    assert set(STAGES) >= BROWSER_STAGES
    assert STAGES[0] == "clicked" and STAGES[-1] == "settled"


def test_an_entry_encodes_only_what_it_carries_and_decodes_to_itself() -> None:
    entry = Entry(correlation_id="c", stage="accepted", at=1.5, detail="POST /x")
    raw = msgspec.msgpack.encode(entry)
    assert msgspec.msgpack.decode(raw, type=dict) == {
        "correlation_id": "c",
        "stage": "accepted",
        "at": 1.5,
        "detail": "POST /x",
    }
    assert msgspec.msgpack.decode(raw, type=Entry) == entry


def test_a_field_from_a_newer_writer_is_ignored_by_an_older_reader() -> None:
    newer = {"correlation_id": "c", "stage": "acked", "at": 2.0, "added_later": [1, 2]}
    entry = msgspec.json.decode(msgspec.json.encode(newer), type=Entry)
    assert (entry.correlation_id, entry.stage, entry.at) == ("c", "acked", 2.0)


def test_an_entry_is_frozen_and_keyword_only() -> None:
    entry = Entry(correlation_id="c", stage="stored", at=0.0)
    with pytest.raises(AttributeError):
        entry.stage = "acked"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Entry("c", "stored", 0.0)  # type: ignore[call-arg]
