"""The record format: round trips, CRC, malformed headers."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from lugpi_store import codec
from lugpi_store.errors import CorruptRecord

DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
          "float16", "float32", "float64"]
SHAPES = [(), (0,), (1,), (7,), (768,), (3, 5), (50, 768), (2, 3, 4), (1, 1, 1, 1, 2)]


def _sample(dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) > 0.5
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(shape) * 1000).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_array_round_trip(dtype, shape):
    value = _sample(dtype, shape, np.random.default_rng(0))
    record = codec.encode_array(value)
    out = codec.decode(record, verify=True)
    assert out.dtype == np.dtype(dtype) and out.shape == shape
    assert out.tobytes() == value.tobytes()
    assert out.flags.writeable and out.flags.c_contiguous


def test_big_endian_and_strided_inputs_are_normalised():
    value = np.arange(24, dtype=">f4").reshape(4, 6)[:, ::2]
    out = codec.decode(codec.encode_array(value), verify=True)
    assert out.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(out, value.astype("<f4"))


def test_header_layout_is_what_the_docs_say():
    record = codec.encode_array(np.zeros((2, 3), np.float16))
    magic, version, kind, code, ndim, crc, length = struct.unpack_from("<4sBBBBIQ", record)
    assert (magic, version, kind, ndim, length) == (b"LGPI", 1, codec.KIND_ARRAY, 2, 12)
    assert codec.DTYPES[code] == np.dtype("<f2")
    assert struct.unpack_from("<2I", record, 20) == (2, 3)
    header_len = len(record) - length
    assert header_len % 16 == 0
    assert crc == zlib.crc32(record[header_len:])


def test_zero_copy_view_shares_the_buffer():
    record = bytearray(codec.encode_array(np.arange(4, dtype=np.int32)))
    view = codec.decode(record, copy=False)
    record[-4:] = (99).to_bytes(4, "little")
    assert view[-1] == 99
    assert codec.decode(bytes(record))[-1] == 99


def test_image_bundle_and_json_round_trip():
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(50))
    image = codec.decode(codec.encode_image(png, "PNG"), verify=True)
    assert image == codec.EncodedImage(png, "png")
    assert codec.decode(codec.encode_image(b"x", "jpg")).format == "jpeg"
    bundle = {"logits": np.array([0.5, -1.0], np.float32), "embedding": np.ones((768,), np.float16)}
    out = codec.decode(codec.encode_bundle(bundle), verify=True)
    assert list(out) == ["logits", "embedding"]
    for name in bundle:
        np.testing.assert_array_equal(out[name], bundle[name])
        assert out[name].dtype == bundle[name].dtype
    doc = {"a": [1, 2.5, "é"], "b": None}
    assert codec.decode(codec.encode_json(doc), verify=True) == doc


@pytest.mark.parametrize(
    "record",
    [
        codec.encode_array(np.arange(100, dtype=np.float32)),
        codec.encode_image(b"\xff\xd8" + bytes(200), "jpeg"),
        codec.encode_bundle({"x": np.arange(10), "y": np.ones(3, np.float16)}),
        codec.encode_json({"k": "v" * 30}),
    ],
    ids=["array", "image", "bundle", "json"],
)
def test_every_flipped_byte_is_detected(record):
    for pos in range(len(record)):
        damaged = bytearray(record)
        damaged[pos] ^= 0x01
        with pytest.raises(CorruptRecord):
            codec.check(bytes(damaged))


def test_truncated_and_foreign_bytes_are_rejected():
    record = codec.encode_array(np.arange(10))
    for bad in (record[:-1], record[:10], b"", b"PK\x03\x04" + record[4:], record + b"\0"):
        with pytest.raises(CorruptRecord):
            codec.check(bad)


def test_unsupported_values_are_refused_with_the_dtype_named():
    with pytest.raises(TypeError, match="object"):
        codec.encode_array(np.array([object()]))
    with pytest.raises(TypeError, match="complex128"):
        codec.encode_array(np.zeros(2, np.complex128))
    with pytest.raises(ValueError, match="bmp"):
        codec.encode_image(b"x", "bmp")


def test_describe():
    assert codec.describe(codec.encode_array(np.zeros((2, 3), np.float16))) == "array float16 [2, 3]"
    assert codec.describe(codec.encode_image(b"abc", "webp")) == "image/webp 3 bytes"


@pytest.mark.parametrize("dtype", ["<f2", ">f4", "<i8", "|b1", "<u1"])
def test_encode_bundles_equals_encode_bundle_row_by_row(dtype):
    rng = np.random.default_rng(0)
    tokens = (rng.standard_normal((5, 3, 4)) * 10).astype(dtype)
    pooled = np.arange(5 * 7, dtype="<f4").reshape(5, 7)
    records = codec.encode_bundles({"tokens": tokens, "pooled": pooled})
    assert records == [codec.encode_bundle({"tokens": tokens[i], "pooled": pooled[i]}) for i in range(5)]
    for i, record in enumerate(records):  # and each decodes, CRCs checked, to its row
        back = codec.decode(record)
        np.testing.assert_array_equal(back["tokens"], tokens[i])
        np.testing.assert_array_equal(back["pooled"], pooled[i])


def test_encode_bundles_edge_cases():
    assert codec.encode_bundles({"x": np.zeros((0, 3), np.float32)}) == []
    one = codec.encode_bundles({"x": np.float16([[1, 2]])})
    assert one == [codec.encode_bundle({"x": np.float16([1, 2])})]
    with pytest.raises(ValueError, match="one length"):
        codec.encode_bundles({"a": np.zeros((2, 3)), "b": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="one length"):
        codec.encode_bundles({"a": np.float32(1.0)})
    with pytest.raises(TypeError, match="cannot store dtype"):
        codec.encode_bundles({"a": np.array([[object()]])})
