"""Fingerprints, keys and per-item seeds."""

from __future__ import annotations

import hashlib
import json

import pytest

from lugpi_store.keys import canonical_json, fingerprint, fingerprint_prefix, record_key, seed_for


def test_fingerprint_is_sha256_of_canonical_json():
    config = {"model": "m", "steps": 25, "guidance": 7.5, "size": [512, 512], "nested": {"b": 1, "a": None}}
    expected = hashlib.sha256(
        json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert fingerprint(config) == expected
    assert fingerprint(dict(reversed(list(config.items())))) == expected
    assert fingerprint({**config, "steps": 26}) != expected
    assert fingerprint({**config, "size": (512, 512)}) == expected


def test_non_finite_and_non_json_values_are_refused():
    with pytest.raises(ValueError, match="nested.x"):
        canonical_json({"nested": {"x": float("nan")}})
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def test_record_key_shape_and_sensitivity():
    fp = fingerprint({"a": 1})
    key = record_key(fp, "a prompt", 7)
    assert len(key) == 49 and key[:17] == fp[:16].encode() + b"/"
    assert fingerprint_prefix(key) == fp[:16] == fingerprint_prefix(fp)
    assert record_key(fp, "a prompt", 7) == key
    assert record_key(fp, "a prompt", 8) != key
    assert record_key(fingerprint({"a": 2}), "a prompt", 7) != key
    # a key can be a part of another key (feature key = H(encoder fp, image key))
    assert record_key(fp, key) == record_key(fp, key.decode())
    with pytest.raises(ValueError):
        record_key("not-hex", "x")


def test_seed_depends_on_prompt_and_base_seed_only():
    assert seed_for("a cat", 0) == seed_for("a cat", 0)
    assert len({seed_for("a cat", 0), seed_for("a cat", 1), seed_for("a dog", 0)}) == 3
    assert 0 <= seed_for("x", 123) < 2**63
