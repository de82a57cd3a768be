# Two commands matter on a fresh machine:
#   make app    install what the app needs (once) and start it on http://localhost:8501
#   make test   install what the tests need (once, Chromium included) and run the offline test suite
# and two more with a real small model on this machine (no key; the first run downloads and builds for
# several minutes, later runs start in seconds):
#   make test-real     the tests marked realmodel, against SmolLM2-135M on a local llama server
#   make local-model   that server and the app pointing at it: Explore > Generate live with no key
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
# 127.0.0.1 keeps the app private to this machine; HOST=0.0.0.0 shares it with a team on the network.
HOST   ?= 127.0.0.1
export LITELLM_OFFLINE_MODE ?= true

# The model and the llama server's wheel live outside the clone, so a new clone or `make clean` keeps them.
MODEL_SETUP := tests/realmodel_setup.py

.PHONY: app test test-real local-model bench install install-dev chromium postgresql clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Debian's Chromium for the browser tests; Playwright's own browser download is never used.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

# Debian's PostgreSQL server binaries: the storage tests start a throw-away cluster of their own
# (tests/pg_support.py) and run on it as well as on SQLite. FUSION_SKIP_PG=1 skips those tests instead.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  [ "$${FUSION_SKIP_PG:-}" = 1 ] || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq postgresql >/dev/null; fi; }

app: install
	$(BIN)/streamlit run app/main.py --server.port $(PORT) --server.address $(HOST) \
	  --server.headless true --browser.gatherUsageStats false

test: install-dev chromium postgresql
	$(BIN)/python -m pytest -q

# Installs llama-cpp-python[server] into .venv (from the cached wheel) for these targets only.
test-real: install-dev
	$(BIN)/python $(MODEL_SETUP) install
	FUSION_REALMODEL=1 $(BIN)/python -m pytest -q -m realmodel tests/test_realmodel.py

local-model: install
	$(BIN)/python $(MODEL_SETUP) app --port $(PORT) --host $(HOST)

bench: install-dev
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
