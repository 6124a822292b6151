# Solution of the exercise in 03-websocket-client.ipynb: run it there (it uses `server`).
# ruff: noqa: F821
import time

import ipywidgets as widgets
from IPython.display import display

from demo_server import ClientThread
from demo_server.notebook import keep

clock = widgets.Label("--:--:--", style={"font_size": "2em"})
clock.add_class("demo-clock")
display(clock)


def show_time(data):  # runs in the client's thread, once a second
    clock.value = time.strftime("%H:%M:%S", time.localtime(data["epoch"]))


# keep(): re-running this cell first stops the client of the previous run
clock_client = keep("clock_client", ClientThread(server.ws_url)).start()
stop_clock = clock_client.on("second", show_time)  # stop_clock() unsubscribes
