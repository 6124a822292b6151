# The two commands of the README: `make lab` opens the tutorial, `make test` runs every test.
# Both create .venv when it is missing and install what they need into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CHROMIUM := /usr/bin/chromium

.PHONY: lab test system notebooks lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

# JupyterLab refuses to run as root unless told: containers and cloud machines run as root.
# LAB_ARGS passes more options, e.g. make lab LAB_ARGS="--no-browser --port=9999".
LAB_ARGS ?=
lab: $(VENV)/.installed
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks/

# Browser tests drive Debian's Chromium (never a downloaded one); the TLS tests compare with
# tshark; the scale-out tests start redis-server. As root on Debian this installs what is
# missing (dumpcap may capture without root: preseeded); otherwise it says what to run, and
# those tests are skipped.
SYSTEM_PACKAGES := chromium libpcap0.8 tshark redis-server
system:
	@missing=""; \
	for tool in $(CHROMIUM) /usr/bin/tshark /usr/bin/redis-server; do \
	  [ -x $$tool ] || missing="$$missing $$tool"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "wireshark-common wireshark-common/install-setuid boolean true" | debconf-set-selections; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); \
	  else \
	    echo "note: missing$$missing; some tests will be skipped: sudo apt-get install $(SYSTEM_PACKAGES)"; \
	  fi; \
	fi

# Two workers, one test file each at a time: the suite mostly waits on timers and sockets
# (about a third of a core busy), so two halve its time without crowding the timing tests.
test: $(VENV)/.installed-test system
	$(BIN)/pytest -n 2 --dist loadfile

# Re-execute every notebook in place so its stored outputs match the package; then drop the
# outputs of solution cells, which would give the answers away.
notebooks: $(VENV)/.installed-test
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.record_timing=False --ExecutePreprocessor.store_widget_state=False \
	  notebooks/[0-9]*.ipynb
	$(BIN)/jupyter nbconvert --to notebook --inplace \
	  --TagRemovePreprocessor.enabled=True --TagRemovePreprocessor.remove_all_outputs_tags=solution \
	  notebooks/[0-9]*.ipynb

# ruff, then mypy on what [tool.mypy] in pyproject.toml lists (the package, tests, scripts).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/fanout.py
	$(BIN)/python benchmarks/flood.py

clean:
	rm -rf $(VENV) build dist *.egg-info test-artifacts
