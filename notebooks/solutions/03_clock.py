# Solution of the exercise in 03-websocket-client.ipynb: run it there (it uses `server`).
# ruff: noqa: F821
import time

import ipywidgets as widgets
from IPython.display import display

from demo_server import ClientThread

stop_previous("clock_client")  # the client of an earlier run of this cell

clock = widgets.Label("--:--:--", style={"font_size": "2em"})
clock.add_class("demo-clock")
display(clock)  # show it before it starts changing


def show_time(data):  # runs in the client's thread, once a second
    clock.value = time.strftime("%H:%M:%S", time.localtime(data["epoch"]))


clock_client = ClientThread(server.ws_url).start()
stop_clock = clock_client.on("second", show_time)  # stop_clock() unsubscribes
