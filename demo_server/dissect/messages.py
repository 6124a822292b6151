"""Layer 4, WebSocket messages: fragments joined, permessage-deflate inflated, closes read."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, CloseCode, Opcode
from websockets.frames import Frame as WsFrame

from .frames import Frame, _known
from .handshake import Deflate
from .tcp import Direction

if TYPE_CHECKING:  # application.py imports this module
    from .application import Packet

__all__ = ["WebSocketMessage", "assemble"]

_MAX_MESSAGE = 64 * 1024 * 1024  # inflate no message beyond this (zip bombs)


@dataclass(frozen=True)
class WebSocketMessage:
    """A whole message: fragments joined and inflated, or one control frame.

    Not :class:`demo_server.events.Message`, the JSON envelope a text message may carry.
    """

    direction: Direction
    opcode: Opcode
    data: bytes
    compressed: bool
    frames: tuple[int, ...]  # indexes in Conversation.frames
    close_code: CloseCode | int | None = None
    close_reason: str | None = None
    packet: Packet | None = None  # what socket.io put in it (set by the application layer)

    @property
    def text(self) -> str | None:
        """The UTF-8 text of a text message, else None."""
        if self.opcode is not Opcode.TEXT:
            return None
        try:
            return self.data.decode()
        except UnicodeDecodeError:
            return None


def assemble(frames: Sequence[Frame], deflate: Deflate | None, warnings: list[str],
             max_inflated: int = _MAX_MESSAGE) -> list[WebSocketMessage]:
    """Join the frames (both directions, in capture order) into messages, in the same order.

    Each direction is inflated by its own decoder when ``deflate`` was negotiated; what
    breaks the rules of RFC 6455 or 7692 is skipped and said in ``warnings``.
    """
    budget = _Budget(max_inflated)
    assemblers = {way: _Assembler(way, deflate, warnings, budget) for way in Direction}
    messages = []
    for index, frame in enumerate(frames):
        message = assemblers[frame.direction].feed(index, frame)
        if message is not None:
            messages.append(message)
    for assembler in assemblers.values():
        assembler.finish()
    return messages


@dataclass
class _Budget:
    """Bytes both directions of a connection may still inflate."""

    left: int


@dataclass
class _Assembler:
    """Joins one direction's frames into messages."""

    direction: Direction
    deflate: Deflate | None
    warnings: list[str]
    budget: _Budget
    decoder: PerMessageDeflate | None = None
    opcode: Opcode | None = None  # of the message in progress
    parts: list[bytes] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    compressed: bool = False

    def __post_init__(self) -> None:
        self._new_decoder()

    def _new_decoder(self) -> None:
        self.decoder = self.deflate.decoder(self.direction) if self.deflate else None

    def feed(self, index: int, frame: Frame) -> WebSocketMessage | None:
        """Take the next frame; return the message it completes, if any."""
        where = f"frame #{index + 1} ({self.direction})"
        must_mask = self.direction is Direction.C2S
        if frame.masked != must_mask:
            rule = "clients must mask" if must_mask else "servers must not mask"
            self.warnings.append(f"{where}: {'' if frame.masked else 'not '}masked, but {rule}")
        opcode = frame.opcode
        if not isinstance(opcode, Opcode):
            self.warnings.append(f"{where}: reserved opcode {frame.opcode_name}, skipped")
            return None
        ws_frame = WsFrame(opcode, frame.payload, frame.fin, frame.rsv1, frame.rsv2, frame.rsv3)
        starts = opcode in (Opcode.TEXT, Opcode.BINARY)
        if starts and self.opcode is not None:
            self.warnings.append(f"{where}: a new message starts before the last one ended")
            self._reset()
        if opcode is Opcode.CONT and self.opcode is None:
            self.warnings.append(f"{where}: a continuation frame outside any message, skipped")
            return None
        try:
            ws_frame = self._inflate(ws_frame, where)
            ws_frame.check()
        except (ProtocolError, PayloadTooBig) as exc:
            self.warnings.append(f"{where}: {exc}")
            self._new_decoder()
            self._reset()
            return None
        if opcode >= Opcode.CLOSE:  # control frames may come between fragments
            return self._control(opcode, ws_frame, index)
        if starts:
            self.opcode, self.compressed = opcode, frame.rsv1
        self.parts.append(bytes(ws_frame.data))
        self.indexes.append(index)
        if not frame.fin:
            return None
        assert self.opcode is not None  # set by the first frame; a stray CONT left above
        message = WebSocketMessage(self.direction, self.opcode, b"".join(self.parts),
                                   self.compressed, tuple(self.indexes))
        self._reset()
        if message.opcode is Opcode.TEXT and message.text is None and self.budget.left > 0:
            self.warnings.append(f"{where}: the text message is not valid UTF-8")
        return message

    def _inflate(self, ws_frame: WsFrame, where: str) -> WsFrame:
        """The frame inflated, within the connection's budget; as sent once it is spent."""
        if self.decoder is None:
            return ws_frame
        if self.budget.left <= 0:  # spent: leave compressed data as it is, RSV1 and all
            return dataclasses.replace(ws_frame, rsv1=False)
        limit = min(_MAX_MESSAGE, self.budget.left)
        try:
            inflated = self.decoder.decode(ws_frame, max_size=limit)
        except PayloadTooBig:
            if limit == _MAX_MESSAGE:
                raise
            self.budget.left = 0
            self.warnings.append(f"{where}: inflated no further: the connection reached the "
                                 "max_inflated limit (--max-inflated raises it); later "
                                 "compressed messages are left as sent")
            return dataclasses.replace(ws_frame, rsv1=False)
        self.budget.left -= len(inflated.data)
        return inflated

    def _control(self, opcode: Opcode, ws_frame: WsFrame, index: int) -> WebSocketMessage:
        message = WebSocketMessage(self.direction, opcode, bytes(ws_frame.data), False, (index,))
        if opcode is Opcode.CLOSE:
            try:
                close = Close.parse(message.data)
            except (ProtocolError, UnicodeDecodeError) as exc:
                self.warnings.append(f"frame #{index + 1} ({self.direction}): bad close "
                                     f"({exc})")
            else:
                message = dataclasses.replace(message, close_code=_known(CloseCode, close.code),
                                              close_reason=close.reason)
        return message

    def _reset(self) -> None:
        self.opcode, self.parts, self.indexes, self.compressed = None, [], [], False

    def finish(self) -> None:
        """Say so when the capture ends inside a fragmented message."""
        if self.opcode is not None:
            self.warnings.append(f"{self.direction}: the capture ends inside a fragmented "
                                 "message")
