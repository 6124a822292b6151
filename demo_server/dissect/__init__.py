"""Take a captured WebSocket conversation apart, like Wireshark does.

scapy has no WebSocket layer (and its HTTP layer mistakes the Upgrade for HTTP/2), so one
module per layer, each working on what the one before found:

1. :mod:`~.tcp`: each direction of the TCP connection is reassembled into one byte stream
   (segments put in sequence order; retransmitted bytes kept once; a hole stops the stream);
   for ``wss://``, :mod:`~.tls` reads the TLS records in it and, with the key log the client
   or server wrote (``SSLKEYLOGFILE``), decrypts them into the streams the next layers read;
2. :mod:`~.handshake`: the handshake is parsed by ``websockets``' sans-I/O HTTP parser and
   ``Sec-WebSocket-Accept`` is recomputed from ``Sec-WebSocket-Key``;
3. :mod:`~.frames`: the frames after it are parsed bit by bit by :func:`parse_header` (the
   lesson; the tests check it against ``websockets.frames.Frame.parse``) and unmasked (the
   lesson is :func:`unmask`, checked against ``websockets.utils.apply_mask``);
4. :mod:`~.messages`: frames are joined into messages and inflated by ``websockets``'
   permessage-deflate decoder, configured from the negotiated parameters, one per direction.

:mod:`~.conversation` runs the layers in that order; :mod:`~.render` writes the table and
the JSON; :mod:`~.cli` is the command line.

``dissect(pcap_or_packets, port, keylog=None)`` returns a :class:`Conversation`; whatever
could not be dissected is said in ``Conversation.warnings``. CLI:
``python -m demo_server.dissect CAPTURE.pcap --port PORT [--keylog KEYS] [--json]``.
"""

from .cli import main
from .conversation import Conversation, DissectError, Limits, conversations, dissect
from .frames import Frame, FrameHeader, parse_header, unmask
from .handshake import GUID, Deflate, Handshake, accept_key
from .messages import WebSocketMessage
from .tcp import Direction, Segment, Stream, reassemble
from .tls import KeyLogError, TlsInfo, TlsRecord, load_keylog

Message = WebSocketMessage  # the old name, kept for existing imports (not events.Message)

__all__ = [
    "GUID",
    "Conversation",
    "Deflate",
    "Direction",
    "DissectError",
    "Frame",
    "FrameHeader",
    "Handshake",
    "KeyLogError",
    "Limits",
    "Message",
    "Segment",
    "Stream",
    "TlsInfo",
    "TlsRecord",
    "WebSocketMessage",
    "accept_key",
    "conversations",
    "dissect",
    "load_keylog",
    "main",
    "parse_header",
    "reassemble",
    "unmask",
]
