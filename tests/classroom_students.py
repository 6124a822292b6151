"""A class of simulated students for the load test, in a process of its own:
``python tests/classroom_students.py WS_URL STUDENTS KEYS_PER_SECOND SECONDS``.

Each student connects (a batch at a time: the listen backlog is finite), then sends one
``client_data`` key at its own steady pace, from a random phase, reading what the server
pushes. Prints one JSON line: how many connected, keys sent, and failures.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

from websockets.asyncio.client import ClientConnection, connect

BATCH = 20  # connections opened at once


async def student(connection: ClientConnection, rate: float, seconds: float,
                  sent: list[int]) -> None:
    async def read() -> None:
        async for _ in connection:
            pass

    reader = asyncio.create_task(read())
    loop = asyncio.get_running_loop()
    start = loop.time() + random.random() / rate
    for n in range(int(seconds * rate)):
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
        await connection.send(json.dumps({"event": "client_data", "data": "abcdefghij"[n % 10]}))
        sent[0] += 1
    await connection.close()
    await reader


async def main(url: str, students: int, rate: float, seconds: float) -> dict[str, int]:
    connections: list[ClientConnection] = []
    for first in range(0, students, BATCH):
        batch = range(first, min(first + BATCH, students))
        connections += await asyncio.gather(*(connect(url, open_timeout=30) for _ in batch))
    sent = [0]
    results = await asyncio.gather(*(student(c, rate, seconds, sent) for c in connections),
                                   return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    return {"connected": len(connections), "sent": sent[0], "failures": len(failures)}


if __name__ == "__main__":
    url, students, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(
        sys.argv[4])
    print(json.dumps(asyncio.run(main(url, students, rate, seconds))), flush=True)
