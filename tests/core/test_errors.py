"""The Skip record: what a build could not use, in one form everywhere (manifest, summaries)."""

from __future__ import annotations

from pathlib import Path

from synthgen.core.errors import CorruptFileError, Skip


def test_a_skip_reads_back_from_its_manifest_form():
    skip = Skip(Path("/data/a.mp4"), "corrupt", "moov atom not found")
    assert skip.file == "/data/a.mp4"
    assert skip.to_dict() == {"path": "/data/a.mp4", "reason": "corrupt",
                              "detail": "moov atom not found"}
    assert Skip.from_dict(skip.to_dict()) == skip
    assert Skip.from_dict({"path": "b", "reason": "empty"}) == Skip("b", "empty")
    assert str(skip) == "/data/a.mp4: corrupt moov atom not found"
    assert str(Skip("b", "empty")) == "b: empty"


def test_a_skip_of_a_source_error_keeps_its_reason_code():
    error = CorruptFileError("/data/a.mp4", "truncated")
    assert Skip.of(error) == Skip("/data/a.mp4", "corrupt", "truncated")
    assert Skip.of(error, "clip 3 left empty: truncated").detail == "clip 3 left empty: truncated"


def test_skips_sort_by_file_reason_detail():
    skips = [Skip("b", "corrupt"), Skip("a", "too_short", "2"), Skip("a", "empty")]
    assert sorted(skips) == [Skip("a", "empty"), Skip("a", "too_short", "2"), Skip("b", "corrupt")]
    assert len({Skip("a", "empty"), Skip("a", "empty")}) == 1
