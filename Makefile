# Two commands do all set-up on a fresh machine:  `make run`  (the app)  and  `make test`  (every test).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast install browser clean

$(BIN)/python:
	command -v $(PY) >/dev/null 2>&1 || { echo "Python 3.11 is needed (python3.11 on PATH, or make PY=python3)"; exit 1; }
	$(PY) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium drives the browser test (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

run: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python app.py $(ARGS)

test: $(STAMP) browser
	GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# Everyday work: the engine's tests, without the slow ones (app servers, CLI subprocesses, torchrun, browsers, the
# real default model). `make test`, what CI runs, is every test.
test-fast: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) workspace
