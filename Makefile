# make run: set up and start the app on the default corpus.  make test: set up and run every test.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check
# This machine keeps the CPU build of torch in /opt/wheels; use it when present.
ifneq ($(wildcard /opt/wheels),)
export PIP_FIND_LINKS ?= /opt/wheels
endif

.PHONY: run test index bench bench-scale bench-peers bench-load chromium clean

run: $(VENV)/.runtime
	$(PY) app.py

test: $(VENV)/.test chromium
	$(PY) -m pytest

index: $(VENV)/.runtime
	$(PY) -m qa index

# Benchmarks print their figures (medians, ratios); they need ../shared/eval beside the checkout.
bench: $(VENV)/.runtime
	$(PY) bench/bench_build_and_ask.py
	$(PY) bench/bench_encoders.py
	$(PY) bench/bench_serving.py

bench-scale: $(VENV)/.runtime
	$(PY) bench/bench_scale.py

bench-peers: $(VENV)/.runtime
	$(PY) bench/bench_peers.py

bench-load: $(VENV)/.runtime
	$(PY) bench/bench_load.py

$(VENV)/.created:
	python3 -m venv $(VENV)
	$(PIP) --upgrade pip
	touch $@

$(VENV)/.runtime: requirements.txt pyproject.toml $(VENV)/.created
	$(PIP) -r requirements.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.test: requirements-test.txt $(VENV)/.runtime
	$(PIP) -r requirements-test.txt
	touch $@

# The browser tests drive Debian's chromium (Playwright's own browser download does not work offline).
chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

clean:
	rm -rf $(VENV) index/CURRENT index/builds index/encoders index/.lock
