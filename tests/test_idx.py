import numpy as np
import pytest

from tasks.idx import IdxFormatError, encode_idx, parse_idx


def test_round_trip_keeps_shape_and_values():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(encode_idx(images)), images)


def test_bad_magic_number_is_caught():
    raw = bytearray(encode_idx(np.zeros((2, 2), np.uint8)))
    raw[2] = 0x0D  # float type code: not the unsigned bytes MNIST uses
    with pytest.raises(IdxFormatError, match="magic"):
        parse_idx(bytes(raw), "x.idx")


def test_truncated_file_is_caught():
    raw = encode_idx(np.ones((5, 28, 28), np.uint8))
    with pytest.raises(IdxFormatError, match="truncated"):
        parse_idx(raw[:-10], "images.idx")


def test_truncated_header_is_caught():
    raw = encode_idx(np.ones((5, 28, 28), np.uint8))
    with pytest.raises(IdxFormatError, match="header"):
        parse_idx(raw[:9])


def test_trailing_bytes_are_caught():
    raw = encode_idx(np.ones(5, np.uint8)) + b"\x00"
    with pytest.raises(IdxFormatError, match="trailing"):
        parse_idx(raw)
