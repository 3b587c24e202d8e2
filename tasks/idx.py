"""Reader for the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the data. We check every part of that against the bytes so
that a truncated or mangled file fails loudly instead of yielding a wrongly shaped array.
"""

from __future__ import annotations

import struct

import numpy as np

from studyflow.errors import IdxFormatError

_UBYTE_TYPE_CODE = 0x08


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the (decompressed) bytes of an unsigned-byte IDX file into a uint8 array."""
    if len(raw) < 4:
        raise IdxFormatError(f"{name}: {len(raw)} bytes is too short for an IDX header")
    zero_a, zero_b, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero_a != 0 or zero_b != 0 or type_code != _UBYTE_TYPE_CODE or not 1 <= ndim <= 4:
        raise IdxFormatError(f"{name}: bad IDX magic number {raw[:4].hex()} (expected 0000 08 0n, unsigned bytes)")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise IdxFormatError(f"{name}: truncated header ({len(raw)} of {header_size} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected_size = header_size + int(np.prod(shape))
    if len(raw) != expected_size:
        raise IdxFormatError(
            f"{name}: {len(raw)} bytes but the header's shape {shape} needs {expected_size}"
            + (" (truncated)" if len(raw) < expected_size else " (trailing bytes)")
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array (used to write small datasets for tests and mirrors)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE_TYPE_CODE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()
