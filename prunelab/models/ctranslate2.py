"""Read CTranslate2 ``model.bin`` files into numpy arrays (no ctranslate2 install needed).

Layout (little endian, as written by ``ModelSpec._serialize`` in CTranslate2's
``python/ctranslate2/specs/model_spec.py``, binary version >= 5)::

    u32 binary_version
    str spec_name                      # e.g. "WhisperSpec"
    u32 spec_revision
    u32 num_variables
    num_variables x {
        str name; u8 rank; u32 dims[rank]; u8 dtype_id; u32 num_bytes; bytes data
    }
    u32 num_aliases
    num_aliases x { str alias; str target_name }

where ``str`` is ``u16 length_with_nul`` followed by UTF-8 bytes and a NUL byte.
"""
from __future__ import annotations

import io
import os
import struct
from typing import BinaryIO

import numpy as np

# Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
DTYPE_NAMES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_NUMPY_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<u2"),  # raw bits, widened to float32 below
}
MIN_BINARY_VERSION = 5


class CT2FormatError(ValueError):
    """The file is not a CTranslate2 model.bin this reader understands."""


def _read_exact(f: BinaryIO, n: int) -> bytearray:
    """Read exactly ``n`` bytes (looping over short reads, e.g. at a split-file boundary)."""
    out = bytearray(n)
    view, got = memoryview(out), 0
    while got < n:
        k = f.readinto(view[got:]) if hasattr(f, "readinto") else None
        if k is None:
            chunk = f.read(n - got)
            k = len(chunk or b"")
            view[got : got + k] = chunk or b""
        if k == 0:
            raise CT2FormatError(f"truncated CTranslate2 file: wanted {n} bytes, got {got}")
        got += k
    return out


def _read_u(f: BinaryIO, fmt: str) -> int:
    return struct.unpack("<" + fmt, _read_exact(f, struct.calcsize(fmt)))[0]


def _read_str(f: BinaryIO) -> str:
    length = _read_u(f, "H")
    raw = _read_exact(f, length)
    if length == 0 or raw[-1] != 0:
        raise CT2FormatError("malformed string in CTranslate2 file")
    return raw[:-1].decode("utf-8")


def read_ctranslate2_header(f: BinaryIO) -> tuple[int, str, int]:
    """Read ``(binary_version, spec_name, spec_revision)`` from the start of ``f``."""
    version = _read_u(f, "I")
    if version < MIN_BINARY_VERSION or version > 64:
        raise CT2FormatError(f"unsupported CTranslate2 binary version {version} (need >= {MIN_BINARY_VERSION})")
    return version, _read_str(f), _read_u(f, "I")


def read_ctranslate2(source: str | os.PathLike | BinaryIO, *, with_header: bool = False):
    """Read all variables of a CTranslate2 ``model.bin``.

    Args:
        source: a path, or a readable binary file object positioned at the start of the file.
        with_header: also return ``(binary_version, spec_name, spec_revision)``.

    Returns:
        ``{name: array}`` with each array in its stored shape and dtype (float16 stays float16;
        bfloat16 is widened to float32). Aliases map to the same array object as their target.
        With ``with_header``, a tuple ``(variables, header)``.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return read_ctranslate2(f, with_header=with_header)
    f = source
    header = read_ctranslate2_header(f)
    variables: dict[str, np.ndarray] = {}
    for _ in range(_read_u(f, "I")):
        name = _read_str(f)
        rank = _read_u(f, "B")
        shape = tuple(_read_u(f, "I") for _ in range(rank))
        dtype_id = _read_u(f, "B")
        if dtype_id >= len(DTYPE_NAMES):
            raise CT2FormatError(f"unknown dtype id {dtype_id} for variable {name!r}")
        dtype_name = DTYPE_NAMES[dtype_id]
        num_bytes = _read_u(f, "I")
        dtype = _NUMPY_DTYPES[dtype_name]
        if num_bytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise CT2FormatError(f"variable {name!r}: {num_bytes} bytes do not fit shape {shape} {dtype_name}")
        array = np.frombuffer(_read_exact(f, num_bytes), dtype=dtype).reshape(shape)
        if dtype_name == "bfloat16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = array
    for _ in range(_read_u(f, "I")):
        alias, target = _read_str(f), _read_str(f)
        if target not in variables:
            raise CT2FormatError(f"alias {alias!r} points to unknown variable {target!r}")
        variables[alias] = variables[target]
    return (variables, header) if with_header else variables


def write_ctranslate2(
    f: BinaryIO,
    variables: dict[str, np.ndarray],
    *,
    spec_name: str = "TestSpec",
    revision: int = 1,
    aliases: dict[str, str] | None = None,
    version: int = 6,
) -> None:
    """Write ``variables`` in the same layout (for tests and round trips; no bfloat16)."""

    def w_str(s: str) -> None:
        raw = s.encode("utf-8")
        f.write(struct.pack("<H", len(raw) + 1) + raw + b"\0")

    f.write(struct.pack("<I", version))
    w_str(spec_name)
    f.write(struct.pack("<II", revision, len(variables)))
    for name, value in variables.items():
        value = np.ascontiguousarray(value)
        w_str(name)
        f.write(struct.pack("<B", value.ndim))
        f.write(b"".join(struct.pack("<I", d) for d in value.shape))
        f.write(struct.pack("<BI", DTYPE_NAMES.index(value.dtype.name), value.nbytes))
        f.write(value.astype(value.dtype.newbyteorder("<")).tobytes())
    aliases = aliases or {}
    f.write(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        w_str(alias)
        w_str(target)


class ConcatReader(io.RawIOBase):
    """A read-only stream over several files read one after another (e.g. split ``model.bin`` parts)."""

    def __init__(self, paths: list[str | os.PathLike]) -> None:
        self._paths = list(paths)
        self._index = 0
        self._current: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while self._index < len(self._paths):
            if self._current is None:
                self._current = open(self._paths[self._index], "rb")
            n = self._current.readinto(view)
            if n:
                return n
            self._current.close()
            self._current = None
            self._index += 1
        return 0

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        super().close()
