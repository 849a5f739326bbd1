"""The lugpi feature store: content-addressed records in one LMDB environment.

>>> from lugpi_store import Store, fingerprint, record_key, encode_array
>>> fp = fingerprint({"encoder": "openai/clip-vit-base-patch32", "pooling": "cls"})
>>> key = record_key(fp, image_key)                      # doctest: +SKIP
>>> Store("ws/store", create=True).put_many("features", [(key, encode_array(x))])  # doctest: +SKIP
"""

from lugpi_store.codec import (
    EncodedImage,
    decode,
    encode_array,
    encode_bundle,
    encode_bundles,
    encode_image,
    encode_json,
)
from lugpi_store.errors import CorruptRecord, CorruptStore, MergeConflict, SchemaError, StoreError, StoreNotFound
from lugpi_store.keys import canonical_json, fingerprint, fingerprint_prefix, record_key, seed_for
from lugpi_store.lmdb_store import NAMESPACES, SCHEMA_VERSION, Store, close_all

__all__ = [
    "NAMESPACES",
    "SCHEMA_VERSION",
    "CorruptRecord",
    "CorruptStore",
    "EncodedImage",
    "MergeConflict",
    "SchemaError",
    "Store",
    "StoreError",
    "StoreNotFound",
    "canonical_json",
    "close_all",
    "decode",
    "encode_array",
    "encode_bundle",
    "encode_bundles",
    "encode_image",
    "encode_json",
    "fingerprint",
    "fingerprint_prefix",
    "record_key",
    "seed_for",
]
