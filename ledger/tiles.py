"""The log as C2SP tlog-tiles: tile paths and entry bundles.

A tile is the row of 256 hashes at tree level ``8 * L`` starting at index ``256 * N``; its path
is ``tile/L/N``, with ``N`` written in groups of three digits, every group but the last marked
``x`` (``x001/x234/067``), and a partial tile of ``W`` hashes is ``tile/L/N.p/W``. Entry tiles
(``tile/entries/N``) hold the entries themselves, each after its length as a big-endian
uint16. https://c2sp.org/tlog-tiles
"""

from __future__ import annotations

import re

from ledger.errors import InvalidInput

HEIGHT = 8
WIDTH = 1 << HEIGHT
#: An entry in an entry tile is at most this long (its length is a uint16).
MAX_TILE_ENTRY = 0xFFFF

_GROUP = re.compile(r"(?:x[0-9]{3}/)*[0-9]{3}")


def index_path(index: int) -> str:
    """``N`` as a tile path writes it: ``1234067`` is ``x001/x234/067``."""
    digits = f"{index:d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def tile_path(level: int | None, index: int, width: int = WIDTH) -> str:
    """The path of a tile (``level`` None: an entry tile), partial if ``width`` < 256."""
    head = "tile/entries" if level is None else f"tile/{level}"
    tail = "" if width == WIDTH else f".p/{width}"
    return f"{head}/{index_path(index)}{tail}"


def parse_tile_path(path: str) -> tuple[int | None, int, int]:
    """``(level, index, width)`` of a tile path (level None for an entry tile); anything
    that is not exactly a tile path is refused."""
    rest = path.removeprefix("/").removeprefix("tile/")
    head, _, rest = rest.partition("/")
    if head == "entries":
        level = None
    elif head.isdigit() and len(head) <= 2 and str(int(head)) == head and int(head) <= 63:
        level = int(head)
    else:
        raise InvalidInput(f"{path!r} is not a tile path")
    width = WIDTH
    if ".p/" in rest:
        rest, _, width_text = rest.partition(".p/")
        if not (width_text.isdigit() and str(int(width_text)) == width_text
                and 1 <= int(width_text) < WIDTH):
            raise InvalidInput(f"{path!r} is not a tile path: a partial width is 1 to 255")
        width = int(width_text)
    if not _GROUP.fullmatch(rest) or len(rest) > 40:
        raise InvalidInput(f"{path!r} is not a tile path")
    index = int(rest.replace("x", "").replace("/", ""))
    if index_path(index) != rest:
        raise InvalidInput(f"{path!r} is not a tile path: write the index as "
                           f"{index_path(index)!r}")
    return level, index, width


def entry_bundle(entries: list[bytes]) -> bytes:
    """An entry tile's bytes."""
    out = bytearray()
    for data in entries:
        if len(data) > MAX_TILE_ENTRY:
            raise InvalidInput(f"an entry of {len(data)} bytes does not fit an entry tile")
        out += len(data).to_bytes(2, "big") + data
    return bytes(out)


def read_entry_bundle(data: bytes) -> list[bytes]:
    """The entries of an entry tile; a torn or padded one is refused."""
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise InvalidInput("the entry tile ends inside an entry's length")
        size = int.from_bytes(data[at:at + 2], "big")
        if at + 2 + size > len(data):
            raise InvalidInput("the entry tile ends inside an entry")
        entries.append(data[at + 2:at + 2 + size])
        at += 2 + size
    return entries
