# Solution of the exercise in 05-capture-handshake.ipynb: run it there (it uses `server`).
# ruff: noqa: F821
import socket

request = (
    "GET /ws HTTP/1.1\r\n"
    f"Host: 127.0.0.1:{server.port}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n"  # the empty line ends the request
)
with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
    sock.sendall(request.encode())
    answer = b""
    while b"\r\n\r\n" not in answer:  # recv() may return part of the answer
        answer += sock.recv(4096)
    head, _, rest = answer.partition(b"\r\n\r\n")  # rest: what came after the empty line
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    print(status)
    accept = headers["Sec-WebSocket-Accept"]
    print("Sec-WebSocket-Accept as in RFC 6455:", accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    while len(rest) < 2:  # the first tick comes within a second
        rest += sock.recv(4096)
    first, second = rest[0], rest[1]
    print(f"first frame: FIN {first >> 7}, opcode {first & 0x0F} (text), MASK {second >> 7}")
