"""The record format: a small typed header plus raw bytes. Never pickle.

Every value in the store is one record::

    offset  size  field
    0       4     magic  b"LGPI"
    4       1     format version (1)
    5       1     kind: 1 array, 2 encoded image, 3 bundle of named arrays, 4 JSON
    6       1     dtype code (arrays) or 0
    7       1     ndim (arrays) or length of the image format name
    8       4     CRC32 of the payload
    12      8     payload length in bytes
    20      ...   shape as ndim x uint32 (arrays) or the image format name (ASCII)
    ...           zero padding to a multiple of 16 bytes
    header  ...   payload

All integers are little-endian and array payloads are C-contiguous
little-endian, so a record reads back the same on any machine. A bundle's
payload is ``uint16 count`` followed by ``uint8 name length, name, uint32
record length, record`` per member, each member an array record.
"""

from __future__ import annotations

import functools
import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from lugpi_store.errors import CorruptRecord

try:  # zlib-ng's CRC32 (same polynomial and values as zlib's) uses PCLMUL/SIMD: ~40 GB/s instead of ~1
    from zlib_ng.zlib_ng import crc32 as _crc32
except ImportError:  # pragma: no cover - the dependency is declared; plain zlib is correct, only slower
    from zlib import crc32 as _crc32

MAGIC = b"LGPI"
FORMAT_VERSION = 1
ALIGN = 16

KIND_ARRAY = 1
KIND_IMAGE = 2
KIND_BUNDLE = 3
KIND_JSON = 4
KIND_NAMES = {KIND_ARRAY: "array", KIND_IMAGE: "image", KIND_BUNDLE: "bundle", KIND_JSON: "json"}

_FIXED = struct.Struct("<4sBBBBIQ")  # 20 bytes
_SHAPES = [struct.Struct(f"<{n}I") for n in range(9)]

DTYPES: dict[int, np.dtype] = {
    1: np.dtype("bool"),
    2: np.dtype("<u1"),
    3: np.dtype("<i1"),
    4: np.dtype("<u2"),
    5: np.dtype("<i2"),
    6: np.dtype("<u4"),
    7: np.dtype("<i4"),
    8: np.dtype("<u8"),
    9: np.dtype("<i8"),
    10: np.dtype("<f2"),
    11: np.dtype("<f4"),
    12: np.dtype("<f8"),
}
_CODES = {dt.str: code for code, dt in DTYPES.items()}

IMAGE_FORMATS = ("png", "webp", "jpeg")


@dataclass(frozen=True)
class EncodedImage:
    """An image kept in its encoded form (PNG/WebP/JPEG bytes)."""

    data: bytes
    format: str

    def to_pil(self):
        import io

        from PIL import Image

        image = Image.open(io.BytesIO(self.data))
        image.load()
        return image


@dataclass(frozen=True)
class Header:
    kind: int
    dtype: np.dtype | None
    shape: tuple[int, ...]
    image_format: str | None
    crc: int
    payload_len: int
    header_len: int


def _pad(n: int) -> int:
    return (-n) % ALIGN


def _header(kind: int, code: int, meta: bytes, nmeta: int, payload: bytes | memoryview) -> bytes:
    crc = _crc32(payload) & 0xFFFFFFFF
    head = _FIXED.pack(MAGIC, FORMAT_VERSION, kind, code, nmeta, crc, len(payload)) + meta
    return head + b"\0" * _pad(len(head))


def encode_array(array: Any) -> bytes:
    """One array as a record. Big-endian input is stored little-endian."""
    arr = np.asarray(array)
    if arr.dtype.kind == "V" or arr.dtype.hasobject:
        raise TypeError(f"cannot store dtype {arr.dtype} (object/structured arrays are not supported)")
    code = _CODES.get(arr.dtype.newbyteorder("<").str)
    if code is None:
        raise TypeError(f"cannot store dtype {arr.dtype}; supported: {sorted(str(d) for d in DTYPES.values())}")
    if arr.ndim > 255:
        raise ValueError("arrays with more than 255 dimensions are not supported")
    if any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"dimension too large for a record: {arr.shape}")
    payload = np.ascontiguousarray(arr, dtype=DTYPES[code]).tobytes()
    meta = struct.pack(f"<{arr.ndim}I", *arr.shape)
    return _header(KIND_ARRAY, code, meta, arr.ndim, payload) + payload


def encode_image(data: bytes, image_format: str) -> bytes:
    """Encoded image bytes (PNG/WebP/JPEG) as a record."""
    fmt = image_format.lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"unknown image format {image_format!r}; use one of {', '.join(IMAGE_FORMATS)}")
    name = fmt.encode("ascii")
    return _header(KIND_IMAGE, 0, name, len(name), data) + bytes(data)


def encode_bundle(arrays: Mapping[str, Any]) -> bytes:
    """Several named arrays as one record (e.g. a teacher's logits + embedding)."""
    if len(arrays) >= 2**16:
        raise ValueError("too many arrays in one bundle")
    parts = [struct.pack("<H", len(arrays))]
    for name, value in arrays.items():
        bname = name.encode("utf-8")
        if not 0 < len(bname) < 256:
            raise ValueError(f"bundle member names must be 1-255 bytes, got {name!r}")
        member = encode_array(value)
        parts.append(struct.pack("<B", len(bname)) + bname + struct.pack("<I", len(member)) + member)
    payload = b"".join(parts)
    return _header(KIND_BUNDLE, 0, b"", 0, payload) + payload


def encode_bundles(columns: Mapping[str, Any]) -> list[bytes]:
    """One bundle record per row of same-length arrays: record ``i`` equals
    ``encode_bundle({name: column[i] for each column})`` byte for byte.

    Every row's members have the same shapes, so the layout (headers, offsets) is built once per shape
    and copied; a record then costs its payload copy and three CRCs (one per member, one over the
    bundle's payload) instead of packing each header in Python — what ``embed`` pays per image.
    """
    cols = {name: np.asarray(value) for name, value in columns.items()}
    lengths = {len(c) for c in cols.values()} if all(c.ndim for c in cols.values()) else set()
    if len(lengths) != 1:
        raise ValueError(f"bundle columns must be arrays of one length, got {[c.shape for c in cols.values()]}")
    n = lengths.pop()
    little = {name: c.dtype.newbyteorder("<") for name, c in cols.items()}
    template, outer, spans = _bundle_layout(tuple((name, little[name].str, c.shape[1:]) for name, c in cols.items()))
    if n == 0:
        return []
    buf = np.empty((n, len(template)), np.uint8)
    buf[:] = np.frombuffer(template, np.uint8)
    for (name, c), (_, lo, hi) in zip(cols.items(), spans):
        buf[:, lo:hi] = np.ascontiguousarray(c, dtype=little[name]).reshape(n, -1).view(np.uint8)
    width, view = buf.shape[1], memoryview(buf).cast("B")
    for crc_at, lo, hi in spans:
        buf[:, crc_at:crc_at + 4] = _crcs(view, width, n, lo, hi)
    buf[:, 8:12] = _crcs(view, width, n, outer, width)
    return [row.tobytes() for row in buf]


@functools.lru_cache(maxsize=64)
def _bundle_layout(members: tuple[tuple[str, str, tuple[int, ...]], ...]) -> tuple[bytes, int, tuple[tuple[int, int, int], ...]]:
    """For members ``(name, dtype, shape)``: a bundle record of zeros, its header's length, and per member
    (its CRC field's offset, its payload's start and end)."""
    template = encode_bundle({name: np.zeros(shape, np.dtype(dtype)) for name, dtype, shape in members})
    outer = read_header(template).header_len
    pos, spans = outer + 2, []
    for name, _, _ in members:
        start = pos + 1 + len(name.encode("utf-8")) + 4  # after the name's length, the name, the record's length
        (length,) = struct.unpack_from("<I", template, start - 4)
        spans.append((start + 8, start + read_header(template[start:start + length]).header_len, start + length))
        pos = start + length
    return template, outer, tuple(spans)


def _crcs(view: memoryview, width: int, n: int, lo: int, hi: int) -> np.ndarray:
    """CRC32 of bytes ``lo:hi`` of each of ``n`` rows of ``width`` bytes, as (n, 4) little-endian bytes."""
    crcs = [_crc32(view[i * width + lo:i * width + hi]) & 0xFFFFFFFF for i in range(n)]
    return np.array(crcs, dtype="<u4").view(np.uint8).reshape(n, 4)


def encode_json(value: Any) -> bytes:
    """A small JSON document (metadata) as a record."""
    payload = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return _header(KIND_JSON, 0, b"", 0, payload) + payload


def read_header(buf: bytes | memoryview) -> Header:
    """Parse and sanity-check a record header (does not check the CRC)."""
    if len(buf) < _FIXED.size:
        raise CorruptRecord(f"record too short ({len(buf)} bytes)")
    magic, version, kind, code, nmeta, crc, payload_len = _FIXED.unpack_from(buf, 0)
    if magic != MAGIC:
        raise CorruptRecord(f"bad magic {bytes(magic)!r}")
    if version != FORMAT_VERSION:
        if version > FORMAT_VERSION:
            raise CorruptRecord(f"record format {version} is newer than this lugpi reads ({FORMAT_VERSION})")
        raise CorruptRecord(f"unknown record format {version}")
    if kind != KIND_ARRAY and code != 0:
        raise CorruptRecord(f"dtype code {code} on a non-array record")
    dtype, shape, image_format = None, (), None
    if kind == KIND_ARRAY:
        if code not in DTYPES:
            raise CorruptRecord(f"unknown dtype code {code}")
        dtype = DTYPES[code]
        end = _FIXED.size + 4 * nmeta
        if len(buf) < end:
            raise CorruptRecord("record header truncated")
        shape = struct.unpack_from(f"<{nmeta}I", buf, _FIXED.size)
    elif kind == KIND_IMAGE:
        end = _FIXED.size + nmeta
        image_format = bytes(buf[_FIXED.size:end]).decode("ascii", errors="replace")
        if image_format not in IMAGE_FORMATS:
            raise CorruptRecord(f"unknown image format {image_format!r}")
    elif kind in (KIND_BUNDLE, KIND_JSON):
        if nmeta:
            raise CorruptRecord(f"unexpected header metadata length {nmeta}")
        end = _FIXED.size
    else:
        raise CorruptRecord(f"unknown record kind {kind}")
    header_len = end + _pad(end)
    if header_len + payload_len != len(buf):
        raise CorruptRecord(f"record length {len(buf)} does not match header ({header_len} + {payload_len})")
    if dtype is not None and math.prod(shape) * dtype.itemsize != payload_len:
        raise CorruptRecord(f"payload of {payload_len} bytes does not hold a {dtype} array of shape {shape}")
    return Header(kind, dtype, tuple(shape), image_format, crc, payload_len, header_len)


def check(buf: bytes | memoryview) -> Header:
    """Parse the header and verify the payload's CRC32; raise :class:`CorruptRecord`."""
    header = read_header(buf)
    view = memoryview(buf)
    pad_start = _FIXED.size + (4 * len(header.shape) if header.kind == KIND_ARRAY else 0)
    if header.kind == KIND_IMAGE:
        pad_start += len(header.image_format or "")
    if any(view[pad_start:header.header_len]):
        raise CorruptRecord("non-zero header padding")
    payload = view[header.header_len:]
    _check_crc(payload, header.crc)
    if header.kind == KIND_BUNDLE:
        try:
            _walk_bundle(payload, verify=True)
        except (struct.error, UnicodeDecodeError, ValueError) as exc:
            raise CorruptRecord(f"malformed bundle: {exc}") from exc
    elif header.kind == KIND_JSON:
        try:
            json.loads(bytes(payload).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptRecord(f"malformed JSON: {exc}") from exc
    return header


def _walk_bundle(payload: memoryview, *, verify: bool) -> dict[str, np.ndarray]:
    (count,) = struct.unpack_from("<H", payload, 0)
    pos, out = 2, {}
    for _ in range(count):
        (nlen,) = struct.unpack_from("<B", payload, pos)
        name = bytes(payload[pos + 1:pos + 1 + nlen]).decode("utf-8")
        pos += 1 + nlen
        (mlen,) = struct.unpack_from("<I", payload, pos)
        pos += 4
        member = payload[pos:pos + mlen]
        if len(member) != mlen:
            raise CorruptRecord(f"bundle member {name!r} truncated")
        out[name] = decode(member, verify=verify, copy=False)
        pos += mlen
    if pos != len(payload):
        raise CorruptRecord("trailing bytes after the last bundle member")
    return out


def _check_crc(payload: memoryview, stored: int) -> None:
    actual = _crc32(payload) & 0xFFFFFFFF
    if actual != stored:
        raise CorruptRecord(f"CRC mismatch (stored {stored:08x}, computed {actual:08x})")


def decode(buf: bytes | memoryview, *, verify: bool = False, copy: bool = True) -> Any:
    """Decode a record: ``np.ndarray``, :class:`EncodedImage`, ``dict`` of arrays, or JSON value.

    ``verify=True`` checks the payload's CRC32 first (one pass over the bytes; a
    bundle's CRC covers its members, so they are not checked twice) and raises
    :class:`CorruptRecord` on a mismatch; :func:`check` is the exhaustive
    variant ``store verify`` uses. ``copy=False`` returns arrays that view
    ``buf`` (zero-copy); only safe while ``buf`` stays valid, i.e. inside the
    LMDB transaction it came from.
    """
    arr = _array_fast(buf, verify=verify)
    if arr is not None:
        return arr.copy() if copy else arr
    header = read_header(buf)
    payload = memoryview(buf)[header.header_len:]
    if verify:
        _check_crc(payload, header.crc)
    if header.kind == KIND_ARRAY:
        arr = np.frombuffer(payload, dtype=header.dtype).reshape(header.shape)
        return arr.copy() if copy else arr
    if header.kind == KIND_IMAGE:
        return EncodedImage(bytes(payload), header.image_format or "")
    try:
        if header.kind == KIND_BUNDLE:
            members = _walk_bundle(payload, verify=False)
            return {k: v.copy() for k, v in members.items()} if copy else members
        return json.loads(bytes(payload).decode("utf-8"))
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise CorruptRecord(f"malformed {KIND_NAMES[header.kind]}: {exc}") from exc


def _array_fast(buf: bytes | memoryview, *, verify: bool = False) -> np.ndarray | None:
    """The hot path of :func:`decode` for array records; ``None`` means "take the slow path"
    (which also raises the error of a record that fails its CRC)."""
    if len(buf) < _FIXED.size:
        return None
    magic, version, kind, code, nmeta, crc, payload_len = _FIXED.unpack_from(buf, 0)
    dtype = DTYPES.get(code)
    if kind != KIND_ARRAY or magic != MAGIC or version != FORMAT_VERSION or dtype is None or nmeta >= len(_SHAPES):
        return None
    header_len = (_FIXED.size + 4 * nmeta + ALIGN - 1) // ALIGN * ALIGN
    if len(buf) < header_len:
        return None
    shape = _SHAPES[nmeta].unpack_from(buf, _FIXED.size)
    count = math.prod(shape)
    if header_len + payload_len != len(buf) or count * dtype.itemsize != payload_len:
        return None
    if verify and _crc32(memoryview(buf)[header_len:]) != crc:
        return None
    return np.frombuffer(buf, dtype=dtype, count=count, offset=header_len).reshape(shape)


def describe(buf: bytes | memoryview) -> str:
    """A one-line human description of a record (kind, dtype, shape or format)."""
    h = read_header(buf)
    if h.kind == KIND_ARRAY:
        return f"array {h.dtype} {list(h.shape)}"
    if h.kind == KIND_IMAGE:
        return f"image/{h.image_format} {h.payload_len} bytes"
    return f"{KIND_NAMES[h.kind]} {h.payload_len} bytes"
