"""Client metadata is checked before anything is logged, and old rows read back without breaking a page."""

from __future__ import annotations

import json

import pytest

from serving.metadata import MAX_DEPTH, MetadataError, nesting_depth, parse_object, read_back


@pytest.mark.parametrize("raw, message", [
    ("[1]", "JSON object"),
    ("{" * 2000 + "}" * 2000, "nested"),  # Python's parser would exhaust the stack: refused before parsing
    ('{"a":' * 600 + "1" + "}" * 600, "nested"),
    ('{"a": NaN}', "finite"),
    ('{"a": Infinity}', "finite"),
    ('{"a": 1e999}', "finite"),
    ('{"a": 123456789012345678901234567890}', "2\\*\\*53"),
    (json.dumps({f"k{i}": i for i in range(65)}), "more than 64"),
    (json.dumps({"a": list(range(70))}), "more than 64"),
    (json.dumps({"": 1}), "keys"),
    (json.dumps({"a\nb": 1}), "keys"),
    (json.dumps({"a": "x" * 600}), "strings"),
    ("x" * 5000, "longer than"),
    ("{not json", "not valid JSON"),
    ('{"a": "\\ud800"}', "valid Unicode"),
    ('{"\\udfff": 1}', "keys"),
])
def test_bad_metadata_is_refused_with_the_rule_it_broke(raw: str, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        parse_object(raw)


def test_good_metadata_passes_unchanged() -> None:
    value = {"lot": "A17", "temp_c": 212.5, "ok": True, "none": None, "tags": ["a", "b"], "nested": {"x": [1, 2]}}
    assert parse_object(json.dumps(value)) == value


def test_depth_is_counted_outside_strings() -> None:
    assert nesting_depth('{"a": "[[[[[[[[[[{{{{{"}') == 1
    assert nesting_depth('{"a": "\\"[[[["}') == 1
    assert nesting_depth("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)) == MAX_DEPTH + 1


def test_rows_written_before_the_rules_read_back_as_a_marker() -> None:
    assert read_back(None) is None
    assert read_back('{"lot": "A"}') == {"lot": "A"}
    deep = '{"a": ' * 300 + "1" + "}" * 300
    assert "_unreadable" in read_back(deep)
    assert "_unreadable" in read_back("{torn")
