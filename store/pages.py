"""The highest page an LMDB data file's B-trees reference, read with plain file reads (no mapping).

A healthy data file can be shorter than ``last_pgno + 1`` pages: LMDB does not
write a transaction's *loose* pages (allocated, then freed before the commit),
yet counts them in ``last_pgno``. Only a page that a tree still references
must lie inside the file; one past the end is what crashes a mapped read
(SIGBUS). :func:`referenced_end` walks every tree from the newest meta page —
the free-page tree, the main tree and each named database in it, and the
overflow runs of large values — reading pages with ``os.pread``, so a
truncated file is an ordinary error here instead of a signal.

Layout (LMDB 0.9, 64-bit): a page starts with ``pgno u64, pad u16, flags u16,
lower u16, upper u16`` (an overflow page has ``pages u32`` in place of lower
and upper); node offsets (u16) follow from byte 16. A node is ``lo u16, hi
u16, flags u16, ksize u16`` and then the key: in a branch page ``lo | hi << 16
| flags << 32`` is the child's page number; in a leaf page ``lo | hi << 16`` is
the data size and the data follows the key (an ``F_BIGDATA`` node holds the
first overflow page's number, an ``F_SUBDATA`` node a named database's
``MDB_db``). ``MDB_db`` is ``pad u32, flags u16, depth u16, branch, leaf,
overflow, entries, root`` (u64 each); the meta page holds two of them (free
pages, main) after ``magic u32, version u32, address u64, mapsize u64`` and is
followed by ``last_pg u64, txnid u64``.
"""

from __future__ import annotations

import os
import struct

P_BRANCH, P_LEAF, P_OVERFLOW, P_LEAF2 = 0x01, 0x02, 0x04, 0x20
F_BIGDATA, F_SUBDATA = 0x01, 0x02
P_INVALID = (1 << 64) - 1
_HEADER = struct.Struct("<QHHHH")
_NODE = struct.Struct("<HHHH")
_DB = struct.Struct("<IHHQQQQQ")
_META = struct.Struct("<IIQQ")


class PastTheEnd(Exception):
    """A referenced page lies (partly) past the end of the file."""


def referenced_end(fd: int, page_size: int, file_size: int) -> int:
    """One past the highest page number any tree of the newest meta page references.

    Raises :class:`PastTheEnd` when a page it must read is not inside the file.
    """
    metas = [_meta(_read(fd, pgno, page_size, file_size)) for pgno in (0, 1)]
    free_root, main_root, _ = max(metas, key=lambda m: m[2])
    end = 2
    stack = [root for root in (free_root, main_root) if root != P_INVALID]
    while stack:
        pgno = stack.pop()
        page = _read(fd, pgno, page_size, file_size)
        end = max(end, pgno + 1)
        _, _, flags, lower, _ = _HEADER.unpack_from(page)
        if flags & P_LEAF2:
            continue  # fixed-size duplicate keys: no page numbers inside
        for offset in struct.unpack_from(f"<{(lower - 16) // 2}H", page, 16):
            lo, hi, nflags, ksize = _NODE.unpack_from(page, offset)
            if flags & P_BRANCH:
                stack.append(lo | hi << 16 | nflags << 32)
                continue
            data = offset + _NODE.size + ksize
            if nflags & F_BIGDATA:
                first = struct.unpack_from("<Q", page, data)[0]
                runs = struct.unpack_from("<I", _read(fd, first, page_size, file_size), 12)[0]
                if (first + runs) * page_size > file_size:
                    raise PastTheEnd(f"overflow pages {first}..{first + runs - 1}")
                end = max(end, first + runs)
            elif nflags & F_SUBDATA:  # a named database (or a duplicate-sort subtree): walk it too
                root = _DB.unpack_from(page, data)[-1]
                if root != P_INVALID:
                    stack.append(root)
    return end


def _read(fd: int, pgno: int, page_size: int, file_size: int) -> bytes:
    if (pgno + 1) * page_size > file_size:
        raise PastTheEnd(f"page {pgno}")
    return os.pread(fd, page_size, pgno * page_size)


def _meta(page: bytes) -> tuple[int, int, int]:
    """(free-tree root, main-tree root, txnid) of a meta page."""
    at = _HEADER.size + _META.size
    free_root = _DB.unpack_from(page, at)[-1]
    main_root = _DB.unpack_from(page, at + _DB.size)[-1]
    txnid = struct.unpack_from("<QQ", page, at + 2 * _DB.size)[1]
    return free_root, main_root, txnid
