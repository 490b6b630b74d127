"""Named arrays in one uncompressed .npz: written chunk after chunk with fixed timestamps (equal arrays,
equal bytes), read back memory-mapped without copying and without running code.

The zip is written here, byte for byte as `zipfile` writes it (stored members, zip64 local headers),
so that a large array's bytes can go to the file from several threads at once while its checksum is
computed: `zipfile` writes a member through one stream, copying it into the page cache and checking
it one after the other.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matching import THREADS
from matching.errors import DataError
from matching.io import atomic_path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # every member's timestamp: equal arrays, equal bytes
# The zip records after the members, signature and layout as zipfile packs them: a central directory
# entry a member, then the zip64 end record and its locator (where zip64 is needed), then the end record.
CENTRAL_ENTRY = (b"PK\001\002", struct.Struct("<4s4B4HL2L5H2L"))
END_64 = (b"PK\x06\x06", struct.Struct("<4sQ2H2L4Q"))
LOCATOR_64 = (b"PK\x06\x07", struct.Struct("<4sLQL"))
END = (b"PK\005\006", struct.Struct("<4s4H2LH"))
SIDE_BY_SIDE_BYTES = 64 * 2**20  # an array at least this large is written by several threads


@dataclass
class Stream:
    """An array too large to hold twice: its shape, its dtype and its rows, chunk after chunk."""

    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: Iterable[np.ndarray]


def write_arrays(arrays: Mapping[str, np.ndarray | list[np.ndarray] | Stream], path: Path | str) -> None:
    """Named arrays in one uncompressed .npz that `np.load` reads (float32 matrices stay contiguous).

    An array given as a list of chunks or a `Stream` is written chunk after chunk, stacked along the
    first axis, and never held whole. Entries carry a fixed timestamp: equal arrays, equal bytes.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        members = [_write_member(handle, name, value, path) for name, value in arrays.items()]
        _write_directory(handle, members)


def _write_member(
    handle: io.BufferedWriter, name: str, value: np.ndarray | list[np.ndarray] | Stream, path: Path | str
) -> zipfile.ZipInfo:
    """One array as a stored member at the handle's position: its local header (rewritten with the
    checksum and size once the data is out), the .npy header, the rows."""
    if not isinstance(value, Stream):
        chunks = [np.asarray(c) for c in (value if isinstance(value, list) else [value])]
        value = Stream((sum(len(c) for c in chunks),) + chunks[0].shape[1:], chunks[0].dtype, chunks)
    info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME)
    info.external_attr = 0o600 << 16  # what zipfile gives a member written through ZipFile.open
    info.CRC = info.compress_size = 0  # until the data is out
    info.header_offset = handle.tell()
    handle.write(info.FileHeader(zip64=True))
    header = io.BytesIO()
    descr = np.lib.format.dtype_to_descr(np.dtype(value.dtype))
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": tuple(value.shape)})
    data_start = handle.tell()
    handle.write(header.getvalue())
    crc, rows = zlib.crc32(header.getvalue()), 0
    for chunk in value.chunks:
        chunk = np.ascontiguousarray(chunk, dtype=value.dtype)
        crc = _write_data(handle, chunk.reshape(-1).view(np.uint8).data, crc)
        rows += len(chunk)
    if rows != value.shape[0]:
        raise ValueError(f"{path}: array {name} got {rows} rows, its header says {value.shape[0]}")
    end = handle.tell()
    info.CRC, info.file_size, info.compress_size = crc, end - data_start, end - data_start
    handle.seek(info.header_offset)
    handle.write(info.FileHeader(zip64=True))
    handle.seek(end)
    return info


def _write_data(handle: io.BufferedWriter, data: memoryview, crc: int) -> int:
    """Write `data` at the handle's position and return the running checksum. A large block goes out in
    MATCHING_THREADS parts side by side, the checksum computed beside them: the cost of a large write
    is the kernel finding pages for it, which threads share out."""
    if THREADS < 2 or len(data) < SIDE_BY_SIDE_BYTES:
        handle.write(data)
        return zlib.crc32(data, crc)
    handle.flush()
    start, step = handle.tell(), -(-len(data) // THREADS)

    def write_part(first: int) -> None:
        part, at = data[first : first + step], start + first
        while len(part):
            written = os.pwrite(handle.fileno(), part, at)
            part, at = part[written:], at + written

    with ThreadPoolExecutor(THREADS) as pool:
        writes = [pool.submit(write_part, first) for first in range(0, len(data), step)]
        crc = zlib.crc32(data, crc)
        for write in writes:
            write.result()
    handle.seek(start + len(data))
    return crc


def _write_directory(handle: io.BufferedWriter, members: list[zipfile.ZipInfo]) -> None:
    """The central directory and the end records after the members, as `ZipFile.close` writes them
    (zip64 fields only where a size, offset or count needs them)."""
    start = handle.tell()
    year, month, day, hour, minute, second = FIXED_TIME
    dos_date, dos_time = (year - 1980) << 9 | month << 5 | day, hour << 11 | minute << 5 | second // 2
    for info in members:
        extra = [info.file_size, info.compress_size] if info.file_size > zipfile.ZIP64_LIMIT else []
        sizes = [0xFFFFFFFF] * 2 if extra else [info.compress_size, info.file_size]
        offset = info.header_offset
        if offset > zipfile.ZIP64_LIMIT:
            extra.append(offset)
            offset = 0xFFFFFFFF
        extra_data = struct.pack("<HH" + "Q" * len(extra), 1, 8 * len(extra), *extra) if extra else b""
        name = info.filename.encode("ascii")
        handle.write(
            CENTRAL_ENTRY[1].pack(
                CENTRAL_ENTRY[0],
                info.create_version,
                info.create_system,
                info.extract_version,
                info.reserved,
                info.flag_bits,
                info.compress_type,
                dos_time,
                dos_date,
                info.CRC,
                *sizes,
                len(name),
                len(extra_data),
                0,  # comment length
                0,  # disk number
                info.internal_attr,
                info.external_attr,
                offset,
            )
            + name
            + extra_data
        )
    end = handle.tell()
    count, size = len(members), end - start
    if count > zipfile.ZIP_FILECOUNT_LIMIT or start > zipfile.ZIP64_LIMIT or size > zipfile.ZIP64_LIMIT:
        end64 = (44, 45, 45, 0, 0, count, count, size, start)  # record size, versions, disks, counts, size, offset
        handle.write(END_64[1].pack(END_64[0], *end64))
        handle.write(LOCATOR_64[1].pack(LOCATOR_64[0], 0, end, 1))
        count, size, start = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(start, 0xFFFFFFFF)
    handle.write(END[1].pack(END[0], 0, 0, count, count, size, start, 0))


class StoredArrays(Mapping):
    """The arrays of a .npz that `write_arrays` wrote (members stored, not compressed), mapped from the
    file read-only instead of copied out of the zip: an array costs no read until its pages are touched,
    and it is unmapped once dropped (each lookup maps it anew)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.headers: dict[str, tuple[int, tuple[int, ...], bool, np.dtype]] = {}
        try:
            self._read_headers()
        except (zipfile.BadZipFile, struct.error, ValueError, EOFError) as error:  # a cut or foreign file
            raise DataError(
                f"{self.path}: not a readable array file ({error}); rerun the stage that writes it"
            ) from None
        size = self.path.stat().st_size
        for name, (offset, shape, _, dtype) in self.headers.items():
            if offset + int(np.prod(shape)) * dtype.itemsize > size:
                raise DataError(
                    f"{self.path}: {name} is cut short (the file ends early); rerun the stage that writes it"
                )

    def _read_headers(self) -> None:
        with open(self.path, "rb") as handle, zipfile.ZipFile(handle) as archive:
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    raise DataError(f"{self.path}: {info.filename} is compressed; rerun the stage that writes the file")
                handle.seek(info.header_offset + 26)  # the local header's name and extra field lengths
                name_length, extra_length = struct.unpack("<HH", handle.read(4))
                handle.seek(info.header_offset + 30 + name_length + extra_length)
                version = np.lib.format.read_magic(handle)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(handle)
                if dtype.hasobject:
                    raise DataError(
                        f"{self.path}: {info.filename} holds Python objects; rerun the stage that writes it"
                    )
                self.headers[info.filename.removesuffix(".npy")] = (handle.tell(), shape, fortran, dtype)

    def __getitem__(self, name: str) -> np.ndarray:
        offset, shape, fortran, dtype = self.headers[name]
        if int(np.prod(shape)) == 0:
            return np.zeros(shape, dtype=dtype)
        mapped = np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
        return mapped.view(np.ndarray)

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers)

    def __len__(self) -> int:
        return len(self.headers)


def read_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """Every array of a .npz, memory-mapped (read-only)."""
    stored = StoredArrays(path)
    return {name: stored[name] for name in stored}
