# Solution of the exercise in 06-dissect-frames.ipynb: run it there.
# ruff: noqa: F821
from websockets.frames import Frame, Opcode

from demo_server.diagrams import as_image, header_bits
from demo_server.dissect import parse_header

for size in (125, 126, 65_535, 65_536):
    header = parse_header(Frame(Opcode.TEXT, b"x" * size).serialize(mask=True))
    field = header.header_bytes[1] & 0x7F
    print(f"{size:>6,} bytes: 7-bit field {field:>3}, length in {header.length_bits:>2} bits, "
          f"header {len(header.header_bytes):>2} bytes")

as_image(header_bits(header, title="65,536 bytes: 127, then a 64-bit length"))
