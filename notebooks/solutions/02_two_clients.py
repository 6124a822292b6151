# Solution of the exercise in 02-websocket-server.ipynb: run it there (it uses `server`).
# ruff: noqa: F821, F704
import asyncio
import json

from websockets.asyncio.client import connect

async with connect(server.ws_url) as a, connect(server.ws_url) as b:
    tick_a, tick_b = await asyncio.gather(a.recv(), b.recv())
    # a connected first: if a tick came between the two connections, a is one tick behind
    while json.loads(tick_a)["data"]["epoch"] < json.loads(tick_b)["data"]["epoch"]:
        tick_a = await a.recv()

second_a, second_b = json.loads(tick_a)["data"]["second"], json.loads(tick_b)["data"]["second"]
print("same second for both:", second_a == second_b)
print("the very same message (one broadcast):", tick_a == tick_b)
