# Solution of the exercise in 11-classroom.ipynb: run it there (it uses `server`).
# ruff: noqa: F821
quiet = [s.client for s in server.roster.connected() if s.messages == 0]
print("not started:", quiet)
server.announce(f"{len(quiet)} of you have not started: type your name")
