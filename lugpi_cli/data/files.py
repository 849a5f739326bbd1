"""Reading whole text files with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

from lugpi_cli.errors import UserError


def read_utf8(path: Path, *, what: str = "file") -> str:
    """The text of ``path``, strict UTF-8 (a leading BOM is dropped).

    Undecodable bytes raise a UserError naming the file, the byte, its offset
    and line, and how to re-encode: silently guessing another encoding would
    turn the text into something else without anyone noticing.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(
            f"{path} is not valid UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start} (line {line})",
            "re-encode the file as UTF-8, for example: "
            f"iconv -f latin1 -t utf-8 '{path}' > '{path.stem}.utf8{path.suffix}'",
        ) from exc
