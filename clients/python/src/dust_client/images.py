"""Camera frames on the wire (docs/api.md, PredictRequest ``images``): numpy HWC uint8 RGB arrays are sent as
RAW_RGB8 (no encoding cost; 64x64x3 is 12 KiB), or as PNG (lossless, smaller for flat scenes) with the
stdlib's zlib; frames a camera already delivers as JPEG or PNG files are sent as they are. Pure."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._proto import types_pb2

EncodingName = Literal["raw_rgb8", "jpeg", "png"]

_ENCODINGS = {
    "raw_rgb8": types_pb2.IMAGE_ENCODING_RAW_RGB8,
    "jpeg": types_pb2.IMAGE_ENCODING_JPEG,
    "png": types_pb2.IMAGE_ENCODING_PNG,
}


@dataclass(frozen=True)
class EncodedImage:
    """One frame as bytes: a JPEG or PNG file, or ``height*width*3`` row-major RGB bytes for raw_rgb8.
    width and height are required for raw_rgb8; for jpeg/png the server checks them when they are not 0."""

    encoding: EncodingName
    data: bytes
    width: int = 0
    height: int = 0

    @classmethod
    def jpeg(cls, data: bytes) -> "EncodedImage":
        return cls("jpeg", bytes(data))

    @classmethod
    def png(cls, data: bytes) -> "EncodedImage":
        return cls("png", bytes(data))


def _hwc_rgb8(array: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise TypeError(f"{what} must be a uint8 array (HWC RGB), got dtype {a.dtype}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{what} must have shape (height, width, 3), got {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what} is empty: shape {a.shape}")
    return np.ascontiguousarray(a)


def raw_rgb8(array: np.ndarray) -> EncodedImage:
    """An HWC uint8 RGB array as a RAW_RGB8 image (a BGR camera's frame needs ``array[..., ::-1]`` first)."""
    a = _hwc_rgb8(array, "image")
    return EncodedImage("raw_rgb8", a.tobytes(), width=a.shape[1], height=a.shape[0])


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_png(array: np.ndarray, level: int = 6) -> EncodedImage:
    """An HWC uint8 RGB array as a PNG file (8-bit truecolour, no filtering), with the stdlib's zlib."""
    a = _hwc_rgb8(array, "image")
    height, width = a.shape[:2]
    # Each scanline is prefixed with its filter type, 0 (None).
    rows = np.concatenate([np.zeros((height, 1), np.uint8), a.reshape(height, width * 3)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + _chunk(b"IEND", b"")
    )
    return EncodedImage("png", data, width=width, height=height)


def to_image_proto(camera: str, image: "np.ndarray | EncodedImage") -> types_pb2.Image:
    what = f"images[{camera!r}]"
    if not isinstance(image, EncodedImage):
        try:
            image = raw_rgb8(image)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{what}: {err}") from None
    encoding = _ENCODINGS.get(image.encoding)
    if encoding is None:
        raise ValueError(f"{what}.encoding must be one of {', '.join(_ENCODINGS)}, got {image.encoding!r}")
    return types_pb2.Image(
        camera=camera,
        encoding=encoding,
        width=_uint32(f"{what}.width", image.width),
        height=_uint32(f"{what}.height", image.height),
        data=image.data,
    )


MAX_UINT32 = 0xFFFF_FFFF


def _uint32(field: str, value: int) -> int:
    """protobuf would refuse -1 with a less helpful error, and numpy integers need int()."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= MAX_UINT32:
        raise ValueError(f"{field} must be an integer in [0, {MAX_UINT32}], got {value!r}")
    return int(value)
