"""Whether an image file holds all the data its header promises.

ITK reads a NIfTI file cut short (an interrupted download, a full disk) without complaint and
fills the missing voxels with 0 HU; its NRRD and MetaImage readers refuse one, with a library
message. So every file is checked before it is read, and every file written is checked before
it is renamed into place (ITK's NIfTI writer does not report a short write either).

The check reads the header and the end of the file, never the data again, where the format
allows: raw data is compared by size, a gzip stream by its trailer, whose last four bytes hold
the uncompressed length. Only where that cannot decide (a gzip file of several members, bzip2,
zlib data of unknown length) is the stream decompressed, in chunks, to its end. None of the
readers of the field does this check in a way we can call (nibabel reads NIfTI but is not ours,
ITK does not check NIfTI at all), hence this module.

A header we cannot parse, or an encoding we do not know, is left for ITK to judge: this module
only ever refuses a file that is provably shorter than its header says.
"""

from __future__ import annotations

import bz2
import gzip
import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from .errors import TruncatedFileError

#: A text header longer than this is not an image header.
MAX_TEXT_HEADER = 1 << 20
_CHUNK = 1 << 20


def check_complete(path: str | Path, written: bool = False) -> None:
    """Refuse ``path`` (NIfTI, NRRD, MetaImage) when its data are shorter than its header says.

    A file we cannot judge (another kind of header, a text encoding) is left to the reader;
    one just ``written`` by us must be judged whole, so there it is refused too."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        judged = _check_nifti(path, name.endswith(".gz"))
    elif name.endswith((".nrrd", ".nhdr")):
        judged = _check_nrrd(path)
    elif name.endswith((".mha", ".mhd")):
        judged = _check_metaimage(path)
    else:
        return
    if written and not judged:
        raise TruncatedFileError(f"{path}: what reached the disk is not a whole image file")


def _short(path: Path, have: int, want: int, what: str = "bytes of data") -> TruncatedFileError:
    return TruncatedFileError(
        f"{path}: holds {have:,} of the {want:,} {what} its header promises; the file was cut short "
        "(an interrupted copy or download, or a full disk?)"
    )


# --- compressed streams ---------------------------------------------------------------------


def _gzip_trailer_size(path: Path) -> int | None:
    """The uncompressed length (mod 2**32) a gzip file's last member records, or None."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() < 18:  # a gzip member is at least 18 bytes
            return None
        fh.seek(-4, 2)
        return struct.unpack("<I", fh.read(4))[0]


def _stream_length(fh, new: Callable[[], object], path: Path, what: str) -> tuple[int, bool]:
    """Decompress a stream of one or more members from ``fh`` in bounded chunks: (bytes out,
    whether the last member ended). Zero padding after a member is ignored, as gzip does."""
    total, d, ended = 0, new(), False
    try:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            while chunk:
                if ended:
                    if not chunk.strip(b"\0"):
                        break
                    d, ended = new(), False
                out, chunk, ended = _step(d, chunk)
                total += out
        return total, ended
    except (zlib.error, OSError, EOFError, ValueError) as exc:
        raise TruncatedFileError(f"{path}: the {what} stream is damaged ({exc})") from None


def _step(d, chunk: bytes) -> tuple[int, bytes, bool]:
    """Feed ``chunk`` to a zlib or bz2 decompressor, at most a chunk of output at a time: (bytes
    out, input left over, whether the member ended)."""
    if isinstance(d, bz2.BZ2Decompressor):
        out = len(d.decompress(chunk, _CHUNK))
        while not d.eof and not d.needs_input:
            out += len(d.decompress(b"", _CHUNK))
        return out, d.unused_data if d.eof else b"", d.eof
    out = len(d.decompress(chunk, _CHUNK))
    while not d.eof:  # output held back by the chunk limit comes with the tail, or with no input
        tail = d.unconsumed_tail
        more = len(d.decompress(tail, _CHUNK))
        out += more
        if not more and not tail:
            break
    return out, d.unused_data if d.eof else b"", d.eof


def _gzip_complete(path: Path, fh_offset: int, want: int) -> None:
    """A gzip stream starting at ``fh_offset`` of ``path`` must decompress to ``want`` bytes or more."""
    if fh_offset == 0 and _gzip_trailer_size(path) == want % 2**32:
        return  # the trailer of a whole single-member stream records exactly this length
    with open(path, "rb") as fh:
        fh.seek(fh_offset)
        total, ended = _stream_length(fh, lambda: zlib.decompressobj(wbits=31), path, "gzip")
    if not ended or total < want:
        raise _short(path, total, want, "bytes of uncompressed data")


def _inflate_complete(path: Path, offset: int, want: int, codec: str) -> None:
    """A zlib (or auto-detected gzip) or bzip2 stream at ``offset`` must give ``want`` bytes."""
    new = (lambda: zlib.decompressobj(wbits=47)) if codec == "zlib" else bz2.BZ2Decompressor
    with open(path, "rb") as fh:
        fh.seek(offset)
        total, ended = _stream_length(fh, new, path, codec)
    if not ended or total < want:
        raise _short(path, total, want, "bytes of uncompressed data")


def _raw_complete(path: Path, offset: int, want: int, what: str = "bytes of data") -> None:
    have = max(path.stat().st_size - offset, 0)
    if have < want:
        raise _short(path, have, want, what)


# --- NIfTI ----------------------------------------------------------------------------------


def _nifti_header(raw: bytes) -> tuple[int, int] | None:
    """(data offset, data bytes) from a NIfTI-1 or NIfTI-2 single-file header, or None."""
    for endian in "<>":
        if len(raw) >= 348 and struct.unpack(endian + "i", raw[:4])[0] == 348:
            dims = struct.unpack(endian + "8h", raw[40:56])
            bitpix = struct.unpack(endian + "h", raw[72:74])[0]
            offset = struct.unpack(endian + "f", raw[108:112])[0]
            if raw[344:347] != b"n+1":
                return None  # a .hdr/.img pair, or not NIfTI: ITK decides
            return _nifti_sizes(dims, bitpix, offset)
        if len(raw) >= 540 and struct.unpack(endian + "i", raw[:4])[0] == 540:
            bitpix = struct.unpack(endian + "h", raw[14:16])[0]
            dims = struct.unpack(endian + "8q", raw[16:80])
            offset = struct.unpack(endian + "q", raw[168:176])[0]
            return _nifti_sizes(dims, bitpix, offset)
    return None


def _nifti_sizes(dims: tuple[int, ...], bitpix: int, offset: float) -> tuple[int, int] | None:
    n = dims[0]
    if not 1 <= n <= 7 or bitpix <= 0 or bitpix % 8 or not math.isfinite(offset) or offset < 0:
        return None
    voxels = math.prod(max(int(d), 1) for d in dims[1 : n + 1])
    return int(offset), voxels * (bitpix // 8)


def _check_nifti(path: Path, compressed: bool) -> bool:
    try:
        if compressed:
            with gzip.open(path, "rb") as fh:
                raw = fh.read(540)
        else:
            with open(path, "rb") as fh:
                raw = fh.read(540)
    except (OSError, EOFError, zlib.error):
        return False  # not gzip, or unreadable: the reader says so in its own words
    sizes = _nifti_header(raw)
    if sizes is None:
        return False
    offset, data = sizes
    if compressed:
        _gzip_complete(path, 0, offset + data)
    else:
        _raw_complete(path, offset, data)
    return True


# --- NRRD and MetaImage (text headers) ------------------------------------------------------


def _text_header(path: Path, end: Callable[[str], bool]) -> tuple[list[str], int, bool] | None:
    """The header lines up to and including the one ``end`` accepts, the byte offset after it,
    and whether that line came (a file cut inside its header ends before it); None for what is
    not a text header."""
    lines, offset = [], 0
    with open(path, "rb") as fh:
        while offset < MAX_TEXT_HEADER:
            raw = fh.readline(MAX_TEXT_HEADER)
            if not raw:
                return (lines, offset, False) if lines else None
            offset += len(raw)
            line = raw.decode("latin-1").rstrip("\r\n")
            if any(ord(c) < 32 and c != "\t" for c in line):
                return None  # binary data before any end of header: not ours to judge
            lines.append(line)
            if end(line):
                return lines, offset, True
    return None


def _cut_header(path: Path) -> TruncatedFileError:
    return TruncatedFileError(f"{path}: the file ends inside its header, before its data; it was cut short")


_NRRD_TYPES = {
    1: ("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort", "unsigned short",
        "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t",
        "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t", "double"),
}
_NRRD_SIZE = {name: size for size, names in _NRRD_TYPES.items() for name in names}


def _check_nrrd(path: Path) -> bool:
    parsed = _text_header(path, lambda line: line == "")
    if parsed is None or not parsed[0][0].startswith("NRRD000"):
        return False
    lines, end, ended = parsed
    fields = {}
    for line in lines[1:]:
        if line.startswith("#") or ":" not in line or ":=" in line:
            continue
        key, _, value = line.partition(":")
        fields[key.strip().lower().replace(" ", "")] = value.strip()
    if not ended and "datafile" not in fields:
        raise _cut_header(path)  # an attached header always ends in an empty line
    try:
        sizes = [int(v) for v in fields["sizes"].split()]
        item = _NRRD_SIZE[fields["type"].lower()]
        skip = int(fields.get("byteskip", "0"))
        lineskip = int(fields.get("lineskip", "0"))
    except (KeyError, ValueError):
        return False
    encoding = fields.get("encoding", "").lower()
    data_file = fields.get("datafile")
    if lineskip or not sizes or min(sizes) < 1:
        return False
    if data_file is not None:
        if data_file.startswith("LIST") or "%" in data_file:
            return False
        target = path.parent / data_file
        if not target.is_file():
            raise TruncatedFileError(f"{path}: its data file {data_file!r} is missing")
        path, end = target, 0
    want = math.prod(sizes) * item
    if encoding == "raw":
        # byte skip -1: the data are the file's last bytes, so its size alone must suffice
        _raw_complete(path, end + max(skip, 0), want)
    elif encoding in ("gzip", "gz"):
        _gzip_complete(path, end, want + max(skip, 0))
    elif encoding in ("bzip2", "bz2"):
        _inflate_complete(path, end, want + max(skip, 0), "bzip2")
    else:
        return False  # text encodings: ITK parses them
    return True


_MET_SIZE = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
    # MET_LONG's size is the platform's; 4 bytes is the smaller one, so it never refuses a whole file
    "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8,
}


def _check_metaimage(path: Path) -> bool:
    parsed = _text_header(path, lambda line: line.replace(" ", "").lower().startswith("elementdatafile="))
    if parsed is None:
        return False
    lines, end, ended = parsed
    if not ended:
        if any(line.replace(" ", "").lower().startswith(("ndims=", "objecttype=")) for line in lines):
            raise _cut_header(path)  # a MetaImage header always ends with its ElementDataFile
        return False
    fields = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    try:
        dims = [int(v) for v in fields["dimsize"].split()]
        item = _MET_SIZE[fields["elementtype"].upper()] * int(fields.get("elementnumberofchannels", "1"))
        header_size = int(fields.get("headersize", "0"))
        data_file = fields["elementdatafile"]
    except (KeyError, ValueError):
        return False
    if not dims or min(dims) < 1 or data_file.upper().startswith("LIST") or "%" in data_file:
        return False
    if data_file.upper() != "LOCAL":
        target = path.parent / data_file
        if not target.is_file():
            raise TruncatedFileError(f"{path}: its data file {data_file!r} is missing")
        path, end = target, max(header_size, 0)
    want = math.prod(dims) * item
    if fields.get("compresseddata", "false").lower() != "true":
        _raw_complete(path, end, want)
        return True
    stored = fields.get("compresseddatasize")
    if stored is not None and stored.isdigit():
        _raw_complete(path, end, int(stored), "bytes of compressed data")
        if path.stat().st_size - end == int(stored):
            return True  # exactly the compressed length the header records
    _inflate_complete(path, end, want, "zlib")
    return True
