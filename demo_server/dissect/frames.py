"""Layer 3, WebSocket frames: headers read bit by bit, payloads unmasked."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from typing import TypeVar

from websockets.frames import Opcode
from websockets.utils import apply_mask

from .tcp import Direction, Stream

__all__ = ["Frame", "FrameHeader", "parse_header", "read_frames", "unmask"]

E = TypeVar("E", bound=enum.IntEnum)


@dataclass(frozen=True)
class FrameHeader:
    """The fields of a WebSocket frame header (RFC 6455, section 5.2)."""

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: Opcode | int  # an int only for a reserved opcode
    masked: bool
    payload_length: int
    length_bits: int  # 7, 16 or 64: how the payload length was written
    masking_key: bytes | None
    header_bytes: bytes  # the header as on the wire, 2 to 14 bytes

    @property
    def opcode_name(self) -> str:
        return self.opcode.name if isinstance(self.opcode, Opcode) else f"0x{self.opcode:X}?"


def parse_header(data: bytes) -> FrameHeader | None:
    """Read a frame header from the start of ``data``; None when ``data`` is too short.

    ::

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        +-+-+-+-+-------+-+-------------+-------------------------------+
        |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
        |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
        |N|V|V|V|       |S|             |   (if payload len==126/127)   |
        | |1|2|3|       |K|             |                               |
        +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
        |     Extended payload length continued, if payload len == 127  |
        + - - - - - - - - - - - - - - - +-------------------------------+
        |                               |Masking-key, if MASK set to 1  |
        +-------------------------------+-------------------------------+
        | Masking-key (continued)       |          Payload Data         |
        +-------------------------------- - - - - - - - - - - - - - - - +
    """
    if len(data) < 2:
        return None
    first, second = data[0], data[1]
    fin = bool(first & 0b1000_0000)  # the top bit of byte 0 ...
    rsv1 = bool(first & 0b0100_0000)
    rsv2 = bool(first & 0b0010_0000)
    rsv3 = bool(first & 0b0001_0000)
    code = first & 0b0000_1111  # ... and its low nibble
    masked = bool(second & 0b1000_0000)  # the top bit of byte 1 ...
    length = second & 0b0111_1111  # ... and its 7 other bits
    size = 2
    if length == 126:  # the real length follows in 2 bytes
        bits, size = 16, 4
    elif length == 127:  # ... or in 8 bytes
        bits, size = 64, 10
    else:
        bits = 7
    key_size = 4 if masked else 0
    if len(data) < size + key_size:
        return None
    if bits > 7:
        length = int.from_bytes(data[2:size], "big")  # network byte order
    return FrameHeader(
        fin, rsv1, rsv2, rsv3,
        _known(Opcode, code),
        masked, length, bits,
        data[size : size + key_size] if masked else None,
        bytes(data[: size + key_size]),
    )


def _known(kind: type[E], value: int) -> E | int:
    """``kind(value)`` when the enum names that value, else the plain int."""
    try:
        return kind(value)
    except ValueError:
        return value


def unmask(payload: bytes, key: bytes) -> bytes:
    """XOR byte ``i`` of the payload with ``key[i % 4]`` (RFC 6455, section 5.3).

    Masking is its own inverse: the same call masks and unmasks. This is the lesson;
    :func:`read_frames` calls ``websockets.utils.apply_mask``, which does the same faster.
    """
    return bytes(byte ^ k for byte, k in zip(payload, itertools.cycle(key)))


@dataclass(frozen=True)
class Frame(FrameHeader):
    """One frame as captured: its header, unmasked payload and where it was seen."""

    direction: Direction
    payload: bytes  # unmasked; still compressed when RSV1 is set
    offset: int  # where the frame starts in its direction's stream
    packet: int  # capture index of the packet that completed it
    time: float


def read_frames(direction: Direction, stream: Stream, start: int, warnings: list[str]
                ) -> list[Frame]:
    """The frames of one direction's stream from offset ``start`` (after the handshake).

    A frame that the stream ends inside of is left out and said in ``warnings``.
    """
    data, pos, frames = stream.data, start, []
    while pos < len(data):
        header = parse_header(data[pos : pos + 14])
        end = pos + len(header.header_bytes) + header.payload_length if header else None
        if header is None or end is None or end > len(data):
            whole = f"{end - pos:,} bytes" if end is not None else "a frame header"
            warnings.append(f"{direction}: the stream ends inside a frame at offset {pos:,} "
                            f"({len(data) - pos:,} bytes of {whole})")
            break
        payload = data[end - header.payload_length : end]
        if header.masking_key is not None:
            payload = apply_mask(payload, header.masking_key)
        packet, when = stream.delivered_by(end)
        frames.append(Frame(**vars(header), direction=direction, payload=payload, offset=pos,
                            packet=packet, time=when))
        pos = end
    return frames
