# Two entry points: `make demo` (install, then train + compute + build on the embedded sample)
# and `make test` (install with test extras and Chromium, then run the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install browser data axe bench clean

$(BIN)/robustviz: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/robustviz

demo: install
	$(BIN)/robustviz demo

# The browser test drives Debian's chromium; install it when missing and we may (root + apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the browser test needs Chromium at /usr/bin/chromium: sudo apt-get install chromium"; exit 1; fi; }

# The Fashion-MNIST test reads a slice of the real dataset: Debian's package puts its idx files in
# /usr/share/datasets/fashion-mnist. Installed when missing and we may (root + apt); else the test says how.
data:
	@test -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  else echo "the Fashion-MNIST test needs: sudo apt-get install dataset-fashion-mnist"; fi; }

# The accessibility test runs axe-core, from npm, in the browser: installed for the tests only (tests/.cache),
# never into the site.
AXE := tests/.cache/node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE):
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	  else echo "the accessibility test needs npm (for axe-core): sudo apt-get install npm"; exit 1; fi; }
	npm install --silent --no-audit --no-fund --prefix tests/.cache axe-core@4.14.1

test: install browser data axe
	$(BIN)/python -m pytest -q

# The benchmarks read the demo's results (trained models and tables); docs/benchmarks.md has their figures.
bench: install
	test -f build/results/mnist-sample/manifest.json || $(BIN)/robustviz demo --quiet
	$(BIN)/python bench/speed.py --results build/results/mnist-sample
	$(BIN)/python bench/mc_masks.py
	$(BIN)/python bench/explorer.py build/site

clean:
	rm -rf build
