"""Pictures and Wireshark-like views of a dissected conversation, for notebooks 05 and 06.

- :func:`ladder`: the sequence ("ladder") diagram of a :class:`~demo_server.dissect.Conversation`:
  client and server columns, one arrow per TCP packet (SYN, the Upgrade request, the 101,
  each WebSocket frame, FIN), labelled, like Wireshark's *Flow Graph*.
- :func:`header_bits`: the bits of one frame header: FIN, RSV1-3, opcode, MASK and the 7-bit
  payload length, then the extended length and masking key, if any.
- :func:`packet_details` and :func:`hexdump`: Wireshark's *packet details* tree and *packet
  bytes* pane, as text.
- :func:`packet_list`: Wireshark's *packet list* for the WebSocket frames, as an HTML table.
- :func:`as_image`: a figure as a PNG image for ``IPython.display``.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot): nothing is shown or
kept open behind the caller's back.
"""

from __future__ import annotations

import html
import io
import json
import string
from collections.abc import Iterable
from dataclasses import dataclass

from IPython.display import HTML, Image
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from PIL import Image as PILImage
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from websockets.frames import Opcode

from .dissect import (
    Conversation,
    Direction,
    Frame,
    FrameHeader,
    Segment,
    WebSocketMessage,
    unmask,
)
from .dissect.application import Packet as EngineIOPacket
from .dissect.engineio import EngineIOType
from .text import clip, host_port, preview, printable_text

__all__ = [
    "COLORS",
    "Arrow",
    "Step",
    "arrows",
    "as_image",
    "header_bits",
    "hexdump",
    "ladder",
    "session_ladder",
    "session_steps",
    "packet_details",
    "packet_list",
]

COLORS = {  # one colour per kind of arrow or field, colour-blind safe (Okabe-Ito)
    "tcp": "#7a7a7a",
    "ack": "#b5b5b5",
    "http": "#0072b2",
    "s2c": "#009e73",
    "c2s": "#d55e00",
    "control": "#cc79a7",
    "close": "#c0392b",
    "segment": "#999999",
}
_MONO = "DejaVu Sans Mono"


# -- the ladder -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrow:
    """One packet of the ladder: who sends it, its label and what kind of thing it carries."""

    segment: Segment
    label: str
    kind: str  # a key of COLORS
    protocol: str  # TCP, HTTP or WebSocket


def _payload_label(message: WebSocketMessage | None, frame: Frame) -> str:
    """What a frame says, short: ``TEXT second: 41``, ``PING "are you there?"``..."""
    name = frame.opcode_name
    data = message.data if message is not None else frame.payload
    if frame.opcode is Opcode.CLOSE and message is not None and message.close_code is not None:
        reason = f' "{message.close_reason}"' if message.close_reason else ""
        return f"CLOSE {int(message.close_code)}{reason}"
    if frame.opcode in (Opcode.TEXT, Opcode.CONT) and message is not None and message.text:
        try:
            obj = json.loads(message.text)
            event, value = obj["event"], obj["data"]
        except (ValueError, TypeError, KeyError):
            return f"{name} {clip(message.text, 28)}"
        if isinstance(value, dict) and "second" in value:
            value = value["second"]
        return f"{name} {event}: {clip(json.dumps(value, ensure_ascii=False), 20)}"
    if frame.opcode is Opcode.TEXT and frame.rsv1:
        return f"{name} (compressed)"
    text = printable_text(bytes(data))
    if text is None:
        return f"{name} {len(data)} bytes"
    return f'{name} "{clip(text, 24)}"' if text else name


def _http_label(conv: Conversation, seg: Segment, end: int) -> str:
    """The request line or the status of the HTTP message a segment carries (part of)."""
    shake = conv.handshake
    if shake is None:
        return f"{len(seg.data)} bytes"  # no HTTP request: nothing to name
    if seg.direction is Direction.C2S:
        upgrade = shake.request.headers.get("Upgrade")
        label = f"{shake.request.method} {shake.request.path}"
        label += f"  (Upgrade: {upgrade})" if upgrade else ""
    elif shake.response is not None:
        label = f"{shake.response.status_code} {shake.response.reason_phrase}"
    else:
        label = "HTTP response"
    if seg.seq >= end:
        return f"HTTP, {len(seg.data)} bytes"  # after the message, without an upgrade
    return f"{label} (part)" if seg.seq + len(seg.data) < end else label


def arrows(conv: Conversation, *, acks: bool = False) -> list[Arrow]:
    """The ladder's arrows, in capture order.

    Bare ACKs (no data, no SYN or FIN) are left out unless ``acks``, except the one that
    completes the TCP three-way handshake and the last one of the close.
    """
    shake = conv.handshake
    http_end = {Direction.C2S: len(shake.request_bytes) if shake else 0,
                Direction.S2C: len(shake.response_bytes) if shake else 0}
    frame_message: dict[int, WebSocketMessage] = {}
    for message in conv.messages:
        for index in message.frames:
            frame_message[index] = message
    upgraded = shake is not None and shake.upgraded
    ends: dict[tuple[Direction, int], list[int]] = {}  # (way, packet) -> frames it completes
    for index, frame in enumerate(conv.frames):
        ends.setdefault((frame.direction, frame.packet), []).append(index)

    result: list[Arrow] = []
    segments = sorted(conv.segments, key=lambda s: s.packet)
    syn_acked = fin_seen = handshake_acked = False
    for seg in segments:
        flags = set(seg.flags)
        if flags & {"S", "F", "R"}:
            names = [n for f, n in (("S", "SYN"), ("F", "FIN"), ("R", "RST")) if f in flags]
            if "A" in flags:
                names.append("ACK")
            result.append(Arrow(seg, ", ".join(names), "tcp", "TCP"))
            syn_acked |= {"S", "A"} <= flags
            fin_seen |= "F" in flags
            continue
        if not seg.data:
            # the ACK that completes the three-way handshake, and the close's last ACK
            completes = (syn_acked and not handshake_acked) or (fin_seen and seg is segments[-1])
            handshake_acked |= syn_acked
            if completes:
                result.append(Arrow(seg, "ACK", "tcp", "TCP"))
            elif acks:
                result.append(Arrow(seg, "ACK", "ack", "TCP"))
            continue
        handshake_acked |= syn_acked
        parts, kind, protocol = [], seg.direction.value, "WebSocket"
        if seg.seq < http_end[seg.direction] or not upgraded:
            parts.append(_http_label(conv, seg, http_end[seg.direction]))
            kind, protocol = "http", "HTTP" if shake else "TCP"
        done = ends.get((seg.direction, seg.packet), [])
        frames = [conv.frames[i] for i in done]
        if frames:
            labels = [_payload_label(frame_message.get(i), conv.frames[i]) for i in done]
            parts.append(labels[0] if len(labels) == 1
                         else f"{labels[0]} + {len(labels) - 1} more")
            if any(f.masked for f in frames):
                parts[-1] += "  · masked"
            if any(f.opcode is Opcode.CLOSE for f in frames):
                kind = "close"
            elif all(f.opcode in (Opcode.PING, Opcode.PONG) for f in frames):
                kind = "control"
            elif protocol == "HTTP":
                kind = seg.direction.value  # the 101 and the first frame in one segment
        if not parts:
            parts.append("TCP segment of a frame")
            kind = "segment"
        result.append(Arrow(seg, " + ".join(parts), kind, protocol))
    return result


_PHASE_COLORS = {"TCP\nopen": "#f3f3f3", "HTTP\nUpgrade": "#e8f1fa",
                 "WebSocket\nframes": "#eaf7f1", "TCP\nclose": "#f3f3f3"}


def _phases(rows: list[Arrow]) -> list[tuple[int, int, str]]:
    """Runs of rows: (first, last, phase), phases as in _PHASE_COLORS."""
    runs: list[tuple[int, int, str]] = []
    closing = False
    for y, arrow in enumerate(rows):
        closing |= "F" in arrow.segment.flags or "R" in arrow.segment.flags
        if closing:
            phase = "TCP\nclose"
        elif arrow.protocol == "HTTP":
            phase = "HTTP\nUpgrade"
        elif arrow.protocol == "WebSocket":
            phase = "WebSocket\nframes"
        elif runs and "S" not in arrow.segment.flags:
            phase = runs[-1][2]  # a bare ACK belongs with what it acknowledges
        else:
            phase = "TCP\nopen"
        if runs and runs[-1][2] == phase:
            runs[-1] = (runs[-1][0], y, phase)
        else:
            runs.append((y, y, phase))
    return runs


def _lifelines(ax: Axes, top: float, rows: int, ends: Iterable[tuple[float, str]]) -> None:
    """The ladder's frame: a vertical line and a name box for each end, the time heading."""
    for x, name in ends:
        ax.plot([x, x], [top + 0.35, rows - 0.5], color="#444444", lw=1.2, zorder=1)
        ax.text(x, top, name, ha="center", va="center", fontsize=10, fontweight="bold",
                zorder=3, bbox={"boxstyle": "round,pad=0.4", "fc": "#f2f2f2", "ec": "#444444"})
    ax.text(0.05, top, "time (s)", ha="left", va="center", fontsize=9, color="#555555")


def _arrow(ax: Axes, y: float, ends: tuple[float, float], direction: Direction, label: str,
           color: str, *, lw: float, fontsize: float, text_color: str,
           family: str | None) -> None:
    """One horizontal arrow of a ladder, client to server or back, labelled above."""
    x_client, x_server = ends
    start, end = (x_client, x_server) if direction is Direction.C2S else (x_server, x_client)
    ax.add_patch(FancyArrowPatch((start, y), (end, y), arrowstyle="-|>", mutation_scale=14,
                                 lw=lw, color=color, zorder=2, shrinkA=0, shrinkB=0))
    ax.text((x_client + x_server) / 2, y - 0.08, label, ha="center", va="bottom",
            fontsize=fontsize, color=text_color, family=family, zorder=3)


def ladder(conv: Conversation, *, acks: bool = False, title: str | None = None) -> Figure:
    """The conversation as a ladder diagram: time runs down, one arrow per packet.

    Arrows are horizontal, as in Wireshark's Flow Graph: on loopback a packet arrives
    microseconds after it leaves. The left column is the time since the first packet,
    the right one the protocol and the TCP payload size.
    """
    rows = arrows(conv, acks=acks)
    height = 1.5 + 0.36 * max(len(rows), 1)
    fig = Figure(figsize=(10, height), layout="constrained")
    ax = fig.add_subplot()
    x_client, x_server, x_note = 2.7, 7.7, 8.75
    top = -1.1
    ax.set_xlim(0, 10.4)
    ax.set_ylim(len(rows) - 0.4, top - 0.55)
    ax.axis("off")
    for first, last, phase in _phases(rows):
        ax.axhspan(first - 0.5, last + 0.5, xmin=0.09, color=_PHASE_COLORS[phase], lw=0,
                   zorder=0)
        ax.text(1.05, (first + last) / 2, phase, ha="left", va="center", fontsize=9,
                color="#555555", style="italic", linespacing=1.1)
    _lifelines(ax, top, len(rows), ((x_client, f"client\n{host_port(*conv.client)}"),
                                    (x_server, f"server\n{host_port(*conv.server)}")))
    ax.text(x_note, top, "protocol · bytes", ha="left", va="center", fontsize=9,
            color="#555555")
    t0 = min((s.time for s in conv.segments), default=0.0)
    for y, arrow in enumerate(rows):
        seg, color = arrow.segment, COLORS[arrow.kind]
        faint = arrow.kind in ("ack", "segment")
        _arrow(ax, y, (x_client, x_server), seg.direction, arrow.label, color,
               lw=1.0 if faint else 1.8, fontsize=8 if faint else 9.5,
               text_color="#777777" if faint else "#222222",
               family=_MONO if arrow.protocol == "WebSocket" else None)
        ax.text(0.05, y, f"{seg.time - t0:8.4f}", ha="left", va="center", fontsize=8.5,
                family=_MONO, color="#555555")
        size = f" · {len(seg.data)}" if seg.data else ""
        ax.text(x_note, y, f"{arrow.protocol}{size}", ha="left", va="center", fontsize=8.5,
                color=color if not faint else "#777777")
    if title:
        ax.set_title(title, fontsize=12, loc="left")
    return fig


# -- a socket.io session: several connections, one ladder -----------------------------------


@dataclass(frozen=True)
class Step:
    """One HTTP message or WebSocket message of a session, on connection ``connection``."""

    time: float
    direction: Direction
    connection: int  # 1 for the first connection in the capture
    label: str
    kind: str  # a key of COLORS


def _message_step_label(message: WebSocketMessage) -> str:
    if message.packet is not None:
        return clip(message.packet.label, 44)
    text = printable_text(message.data)
    return f"{message.opcode.name} {clip(text, 36)}" if text else message.opcode.name


def _http_step_label(what: str, packets: Iterable[EngineIOPacket]) -> str:
    labels = [p.label for p in packets]
    if not labels:
        return clip(what, 60)
    more = f" + {len(labels) - 1} more" if len(labels) > 1 else ""
    return f"{clip(what, 26)}: {clip(labels[0], 30)}{more}"


def session_steps(convs: list[Conversation]) -> list[Step]:
    """Every request, response and WebSocket message of ``convs``, in time order.

    What ``dissect.conversations`` returns for a socket.io session: long-polling requests
    (each with the Engine.IO packets of its body), the upgrade, then the messages.
    """
    steps = []
    for number, conv in enumerate(convs, 1):
        c2s, s2c = conv.streams[Direction.C2S], conv.streams[Direction.S2C]
        for exchange in conv.http:
            request, response = exchange.request, exchange.response
            path = request.path.split("?")[0]
            query = conv.engineio.transport if conv.engineio else None
            what = f"{request.method} {path}" + (f" ({query})" if query else "")
            steps.append(Step(c2s.delivered_by(exchange.request_end)[1], Direction.C2S, number,
                              _http_step_label(what, exchange.request_packets), "http"))
            if response is not None:
                steps.append(Step(s2c.delivered_by(exchange.response_end)[1], Direction.S2C,
                                  number, _http_step_label(f"{response.status_code} "
                                                           f"{response.reason_phrase}",
                                                           exchange.response_packets), "http"))
        shake = conv.handshake
        if shake is not None and shake.upgraded and shake.response is not None:
            steps.append(Step(c2s.delivered_by(len(shake.request_bytes))[1], Direction.C2S,
                              number, f"GET {shake.request.path.split('?')[0]} (Upgrade: "
                              "websocket)", "http"))
            steps.append(Step(s2c.delivered_by(len(shake.response_bytes))[1], Direction.S2C,
                              number, "101 Switching Protocols", "http"))
        for message in conv.messages:
            heartbeat = message.packet is not None and message.packet.engineio.type in (
                EngineIOType.PING, EngineIOType.PONG, EngineIOType.UPGRADE, EngineIOType.NOOP)
            kind = ("close" if message.opcode is Opcode.CLOSE else "control"
                    if message.opcode in (Opcode.PING, Opcode.PONG) or heartbeat
                    else message.direction.value)
            steps.append(Step(conv.frames[message.frames[-1]].time, message.direction, number,
                              _message_step_label(message), kind))
    return sorted(steps, key=lambda step: step.time)


def session_ladder(convs: list[Conversation], *, limit: int = 40,
                   title: str | None = None) -> Figure:
    """A ladder of a whole session: one row per HTTP or WebSocket message, all connections.

    The column between the time and the client names the TCP connection (``#1``...), so
    socket.io's long-polling requests, the upgrade on a new connection and the messages
    after it read top to bottom. Shows the first ``limit`` steps.
    """
    steps = session_steps(convs)
    rows = steps[:limit]
    height = 1.6 + 0.36 * max(len(rows), 1)
    fig = Figure(figsize=(10, height), layout="constrained")
    ax = fig.add_subplot()
    x_conn, x_client, x_server = 1.15, 2.1, 8.6
    top = -1.1
    ax.set_xlim(0, 9.4)
    ax.set_ylim(len(rows) - 0.4 + (0.6 if len(steps) > limit else 0), top - 0.55)
    ax.axis("off")
    _lifelines(ax, top, len(rows), ((x_client, "client"), (x_server, "server")))
    ax.text(x_conn, top, "TCP", ha="center", va="center", fontsize=9, color="#555555")
    t0 = steps[0].time if steps else 0.0
    for y, step in enumerate(rows):
        _arrow(ax, y, (x_client, x_server), step.direction, step.label, COLORS[step.kind],
               lw=1.6, fontsize=9, text_color="#222222", family=_MONO)
        ax.text(0.05, y, f"{step.time - t0:7.3f}", ha="left", va="center", fontsize=8.5,
                family=_MONO, color="#555555")
        ax.text(x_conn, y, f"#{step.connection}", ha="center", va="center", fontsize=8.5,
                color="#555555")
    if len(steps) > limit:
        ax.text((x_client + x_server) / 2, len(rows) - 0.1, f"... {len(steps) - limit} more",
                ha="center", va="center", fontsize=9, color="#777777")
    if title:
        ax.set_title(title, fontsize=12, loc="left")
    return fig


# -- the header bits ----------------------------------------------------------------------------

_FIELD_COLORS = {
    "FIN": "#cfe8ff", "RSV": "#eeeeee", "RSV1": "#e2c6f2", "opcode": "#ffe3b3", "MASK": "#ffd0d0",
    "len": "#d4f2d4", "ext": "#d4f2d4", "key": "#ffd0d0", "payload": "#f7f7f7",
}


def header_bits(header: FrameHeader, *, title: str | None = None) -> Figure:
    """A picture of one frame header: the 16 bits of bytes 0-1, then the bytes after them.

    Each field is a colour; above it its name, inside it its bits, below it what they mean.
    The second row holds the extended payload length (16 or 64 bits, when the 7-bit length
    is 126 or 127) and the masking key (when MASK is 1), byte by byte.
    """
    first, second = header.header_bytes[0], header.header_bytes[1]
    bits = f"{first:08b}{second:08b}"
    seven = second & 0x7F
    opcode = f"0x{first & 0x0F:X} = {header.opcode_name.lower()}"
    fields = [  # (name, first bit, width, meaning, colour key)
        ("FIN", 0, 1, "final" if header.fin else "more\nto come", "FIN"),
        ("RSV1", 1, 1, "deflate" if header.rsv1 else "", "RSV1" if header.rsv1 else "RSV"),
        ("RSV2", 2, 1, "", "RSV"),
        ("RSV3", 3, 1, "", "RSV"),
        ("opcode", 4, 4, opcode, "opcode"),
        ("MASK", 8, 1, "masked" if header.masked else "not\nmasked", "MASK"),
        ("payload len", 9, 7, f"{seven}" + {126: "\n→ 16-bit length follows",
                                             127: "\n→ 64-bit length follows"}.get(seven, " bytes"),
         "len"),
    ]
    after = header.header_bytes[2:]
    ext = {16: 2, 64: 8}.get(header.length_bits, 0)
    groups = []  # (label, bytes, colour key)
    if ext:
        groups.append((f"extended payload length = {header.payload_length:,}",
                       after[:ext], "ext"))
    if header.masked:
        groups.append(("masking key", after[ext:ext + 4], "key"))
    count = sum(len(b) for _, b, _ in groups)
    byte_w = min(2.0, 16.8 / count) if count else 2.0  # at most 24 units wide in all
    row2_width = count * byte_w + _BOX + 0.7
    width = max(16.0, row2_width)
    fig = Figure(figsize=(0.55 * width + 1.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(-0.3, width + 0.3)
    ax.set_ylim(-3.45, 2.5)
    ax.set_aspect("equal")
    ax.axis("off")
    for b, value in ((0, first), (1, second)):  # byte labels above the row
        ax.annotate("", xy=(8 * b + 0.05, 1.95), xytext=(8 * b + 7.95, 1.95),
                    arrowprops={"arrowstyle": "|-|", "color": "#888888", "lw": 0.8,
                                "mutation_scale": 3})
        ax.text(8 * b + 4, 2.05, f"byte {b}  =  0x{value:02X}", ha="center", va="bottom",
                fontsize=10, color="#444444")
    for name, start, size, meaning, color in fields:
        ax.add_patch(Rectangle((start, 0), size, 1, fc=_FIELD_COLORS[color], ec="#333333",
                               lw=1.2, zorder=2))
        for i in range(start, start + size):
            if i > start:
                ax.plot([i, i], [0.15, 0.85], color="#999999", lw=0.6, zorder=3)
            ax.text(i + 0.5, 0.5, bits[i], ha="center", va="center", fontsize=15,
                    family=_MONO, fontweight="bold", zorder=4)
        small = size == 1
        ax.text(start + size / 2, 1.12, name, ha="center", va="bottom",
                fontsize=8 if small else 10, fontweight="bold")
        if meaning:
            ax.text(start + size / 2, -0.12, meaning, ha="center", va="top",
                    fontsize=8 if small else 9.5, color="#333333", linespacing=1.1)
    y = -2.6
    if groups:
        where = f"then bytes 2–{1 + len(after)}, before the payload:"
    else:
        where = "then the payload, from byte 2 (no extended length, no masking key):"
    ax.text(0, y + 1.25, where, ha="left", va="center", fontsize=10, color="#444444")
    x = 0.0
    for label, data, color in groups:
        for byte in data:
            ax.add_patch(Rectangle((x, y), byte_w, 1, fc=_FIELD_COLORS[color],
                                   ec="#333333", lw=1.2, zorder=2))
            ax.text(x + byte_w / 2, y + 0.5, f"{byte:02x}", ha="center", va="center",
                    fontsize=13, family=_MONO, zorder=4)
            x += byte_w
        span = len(data) * byte_w
        ax.text(x - span / 2, y - 0.15, label, ha="center", va="top", fontsize=9.5)
    _payload_box(ax, x, y, header)
    if title:
        ax.set_title(title, fontsize=12, loc="left")
    return fig


_BOX = 6.5  # width of the payload box, in bit units


def _payload_box(ax: Axes, x: float, y: float, header: FrameHeader) -> None:
    """The start of the payload as on the wire: text when it reads as text, else hex."""
    x = x + 0.25 if x else x
    ax.add_patch(FancyBboxPatch((x, y), _BOX, 1, boxstyle="round,pad=0,rounding_size=0.2",
                                fc=_FIELD_COLORS["payload"], ec="#999999", lw=1, ls="--",
                                zorder=2))
    payload = getattr(header, "payload", None)  # a captured Frame has it, a header not
    if payload is None:
        shown = "payload …"
    else:
        if header.masking_key is not None:
            payload = unmask(payload, header.masking_key)  # back to the bytes on the wire
        text = printable_text(payload[:32])
        # text, else 6 bytes in hex and " …" when there are more
        shown = clip(text, 26) if text and not header.masked else clip(payload.hex(" "), 19)
    ax.text(x + _BOX / 2, y + 0.5, shown, ha="center", va="center", fontsize=9.5,
            family=_MONO, color="#333333", zorder=4)
    what = "payload" + (", masked" if header.masked else "") + (
        ", compressed" if header.rsv1 else "")
    ax.text(x + _BOX / 2, y - 0.15, f"{what}: {header.payload_length:,} bytes", ha="center",
            va="top", fontsize=9.5)


def as_image(fig: Figure, *, dpi: int = 144) -> Image:
    """``fig`` as a PNG :class:`IPython.display.Image`, shown at its natural size.

    The PNG is reduced to a 256-colour palette: a third of the size, the same to the eye
    (flat colours and text), which keeps notebooks with stored outputs small.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    buffer.seek(0)
    with PILImage.open(buffer) as full:
        width = full.width
        small = full.convert("RGB").quantize(colors=256, method=PILImage.Quantize.MEDIANCUT)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return Image(data=out.getvalue(), format="png", width=round(width * 96 / dpi))


# -- Wireshark's panes as text and HTML -------------------------------------------------------


def hexdump(data: bytes, *, start: int = 0) -> str:
    """Wireshark's *packet bytes* pane: offset, 16 bytes in hex, the same as ASCII."""
    printable = set(string.ascii_letters + string.digits + string.punctuation + " ")
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk[:8])
        if len(chunk) > 8:
            hexes += "  " + " ".join(f"{b:02x}" for b in chunk[8:])
        text = "".join(chr(b) if chr(b) in printable else "." for b in chunk)
        lines.append(f"{start + offset:04x}  {hexes:<48}  {text}")
    return "\n".join(lines)


def _http_lines(raw: bytes) -> Iterable[str]:
    for line in raw.split(b"\r\n")[:-1]:
        yield line.decode("latin-1") + "\\r\\n"


def packet_details(conv: Conversation, packets: list[Packet], direction: Direction) -> str:
    """Wireshark's *packet details* tree for the handshake's request (``C2S``) or 101 (``S2C``).

    ``packets`` is the capture the conversation was dissected from (its ``Segment.packet``
    numbers index it). Sequence numbers are relative, as Wireshark shows them.
    """
    shake = conv.handshake
    if shake is None:
        raise ValueError("the conversation has no handshake")
    raw = shake.request_bytes if direction is Direction.C2S else shake.response_bytes
    carrying = [s for s in conv.segments if s.direction is direction and s.data
                and s.seq < len(raw)]
    if not carrying:
        raise ValueError(f"no {direction} segment carries the handshake")
    seg = carrying[0]
    pkt = packets[seg.packet]
    ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
    tcp = pkt.getlayer(TCP)
    if ip is None or tcp is None:  # dissect found the segment in it: cannot happen
        raise ValueError(f"packet #{seg.packet + 1} is not TCP over IP")
    version = "Internet Protocol Version 6" if isinstance(ip, IPv6) else \
        "Internet Protocol Version 4"
    names = {"F": "FIN", "S": "SYN", "R": "RST", "P": "PSH", "A": "ACK", "U": "URG"}
    flags = ", ".join(names.get(flag, flag) for flag in str(tcp.flags))

    lines = []
    ether = pkt.getlayer(Ether)
    if ether is not None:
        lines.append(f"▸ Ethernet II, Src: {ether.src}, Dst: {ether.dst}")
    lines += [
        f"▸ {version}, Src: {ip.src}, Dst: {ip.dst}",
        f"▾ Transmission Control Protocol, Src: {host_port(ip.src, tcp.sport)}, "
        f"Dst: {host_port(ip.dst, tcp.dport)}",
        f"      Sequence number: {seg.seq + 1}    (relative: the first byte after the SYN is 1)",
        f"      Flags: {flags}",
    ]
    if len(carrying) > 1:
        lines.append(f"      [{len(carrying)} reassembled TCP segments]")
    lines.append("▾ Hypertext Transfer Protocol")
    lines.extend(f"      {line}" for line in _http_lines(raw))
    if direction is Direction.C2S:
        if shake.accept_expected:
            lines.append(f"      [expected Sec-WebSocket-Accept: {shake.accept_expected}]")
    elif shake.accept_expected:
        lines.append(f"      [Sec-WebSocket-Accept matches the key: {shake.accept_ok}]")
    return "\n".join(lines)


_CELL = "text-align:left;vertical-align:top;padding:2px 7px;border-bottom:1px solid #ddd"
_LIST_STYLE = {
    "table": "border-collapse:collapse;font-family:'DejaVu Sans Mono',monospace;font-size:11px",
    "th": "text-align:left;padding:3px 7px;background:#e6e6e6;border-bottom:1px solid #999",
    "td": _CELL + ";white-space:nowrap",
    "ws-payload": _CELL + ";white-space:normal;word-break:break-all;min-width:22em;"
                  "max-width:34em",
}
_ROW_COLORS = {"c2s": "#fdebd0", "s2c": "#d5f5e3", "control": "#f5e1ee", "close": "#f9d6d5"}


def packet_list(conv: Conversation, *, limit: int = 40) -> HTML:
    """Wireshark's *packet list*, one row per WebSocket frame, as an HTML table.

    Columns: No. (frame number), Time (s since the first packet), Source → Destination
    (client or server), Info (opcode and flags, as Wireshark writes them after
    "WebSocket"), Length (payload bytes), Masking key, and Payload (unmasked; still
    compressed when RSV1 is set, then shown in hex). Each cell has a class name
    (``ws-time``, ``ws-len``, ``ws-key``...) for notebook output sanitizers.
    """
    t0 = min((s.time for s in conv.segments), default=0.0)
    ways = {Direction.C2S: "client → server", Direction.S2C: "server → client"}
    heads = ["No.", "Time", "Source → Destination", "Info", "Length", "Masking key", "Payload"]
    out = [f'<table style="{_LIST_STYLE["table"]}"><tr>'
           + "".join(f'<th style="{_LIST_STYLE["th"]}">{h}</th>' for h in heads) + "</tr>"]
    for number, frame in enumerate(conv.frames[:limit], 1):
        flags = "".join(f" [{name}]" for name, on in (("FIN", frame.fin), ("RSV1", frame.rsv1),
                                                      ("RSV2", frame.rsv2), ("RSV3", frame.rsv3),
                                                      ("MASKED", frame.masked)) if on)
        if frame.opcode is Opcode.CLOSE:
            kind = "close"
        elif frame.opcode in (Opcode.PING, Opcode.PONG):
            kind = "control"
        else:
            kind = frame.direction.value
        key = frame.masking_key.hex(" ") if frame.masking_key else "-"
        cells = [("ws-no", str(number)), ("ws-time", f"{frame.time - t0:.6f}"),
                 ("ws-way", ways[frame.direction]),
                 ("ws-info", f"{frame.opcode_name.capitalize()}{flags}"),
                 ("ws-len", str(frame.payload_length)), ("ws-key", key),
                 ("ws-payload", preview(frame.payload, 120, quote=False))]
        out.append(f'<tr style="background:{_ROW_COLORS[kind]}">' + "".join(
            f'<td class="{name}" style="{_LIST_STYLE.get(name, _LIST_STYLE["td"])}">'
            f"{html.escape(text, quote=False)}</td>" for name, text in cells) + "</tr>")
    out.append("</table>")
    if len(conv.frames) > limit:
        out.append(f"<p>… and {len(conv.frames) - limit} more frames</p>")
    return HTML("".join(out))
