"""Fingerprints and content-addressed record keys.

A *fingerprint* is the SHA-256 of the canonical JSON of everything that changes
a producer's output (model id and revision, steps, guidance, size, dtype,
pooling, ...). A *record key* hashes a fingerprint together with the input the
value was produced from:

    image key   = key(generator fingerprint, prompt, seed)
    feature key = key(encoder fingerprint, image key)
    teacher key = key(teacher run fingerprint, sample id)

Keys are ASCII, ``<first 16 hex of fingerprint>/<32 hex of the content hash>``,
so all records of one producer sit together in LMDB's sorted key order and can
be counted, listed or pruned by prefix.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

FP_PREFIX_LEN = 16
DIGEST_LEN = 32
_HEX = frozenset("0123456789abcdef")


def _check_finite(value: Any, path: str = "$") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot fingerprint non-finite float {value!r} at {path}")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"fingerprint config keys must be str, got {k!r} at {path}")
            _check_finite(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite(v, f"{path}[{i}]")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace, ASCII only; tuples become lists.

    Raises ``TypeError`` for values JSON cannot represent and ``ValueError`` for
    NaN/inf, so a config can never hash differently on two machines.
    """
    _check_finite(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def fingerprint(config: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()


def _part(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("ascii")
    return value


def record_key(fp: str, *parts: Any) -> bytes:
    """The store key of the value ``fp`` produced from ``parts``.

    >>> record_key("ab" * 32, "a prompt", 7)[:17]
    b'abababababababab/'
    """
    if len(fp) < FP_PREFIX_LEN or not _HEX.issuperset(fp):
        raise ValueError(f"not a hex fingerprint: {fp!r}")
    digest = hashlib.sha256(canonical_json([fp, *map(_part, parts)]).encode("ascii")).hexdigest()
    return f"{fp[:FP_PREFIX_LEN]}/{digest[:DIGEST_LEN]}".encode("ascii")


def fingerprint_prefix(fp_or_key: str | bytes) -> str:
    """The 16-hex fingerprint prefix a key (or a full fingerprint) starts with."""
    text = fp_or_key.decode("ascii") if isinstance(fp_or_key, (bytes, bytearray)) else fp_or_key
    return text[:FP_PREFIX_LEN]


def seed_for(prompt: str, base_seed: int) -> int:
    """A per-item seed from the prompt's hash and a base seed (fits a 63-bit int).

    The image for a prompt then depends on neither batch size, order, resume
    point nor sharding.
    """
    digest = hashlib.sha256(canonical_json([int(base_seed), prompt]).encode("ascii")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
