# Blazing Flow. Targets: setup run test bench bench-redis bench-peers bench-smoke tables
# charts-demo lint lib dist clean distclean.
# Everything Python runs in .venv; a stamp file keeps repeated `make` runs fast.

PYTHON ?= python3
GO     := $(or $(BLAZING_GO),go)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LIB    := python/blazing/libblazing.so
# What libblazing.so is built from (keep in step with GO_INPUTS in build_support/golib.py).
GO_SRC := go.mod go.sum $(shell find core cgo cmd -type f 2>/dev/null)
GO_FILES = $(shell find . -name '*.go' -not -path './.*' -not -path './build/*')
GOFMT    = $(shell $(GO) env GOROOT)/bin/gofmt

.PHONY: setup run test bench bench-redis bench-peers bench-smoke tables charts-demo lint lib \
	dist clean distclean
.DEFAULT_GOAL := setup

setup: $(STAMP) $(LIB)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Editable install: python/blazing is imported in place, next to the libblazing.so built there.
$(STAMP): pyproject.toml setup.py build_support/golib.py build_support/elfdeps.py | $(PY) $(LIB)
	$(PY) -m pip uninstall -q -y blazing-flow 2>/dev/null || true  # the distribution's old name
	$(PY) -m pip install -q -e '.[test]'
	touch $@

lib: $(LIB)

$(LIB): $(GO_SRC) build_support/golib.py
	$(PYTHON) build_support/golib.py --force $@

run: setup
	$(PY) examples/quickstart.py

# Without redis-server (or the other servers) the tests that need one skip; both halves
# end with the skipped tests named and why (gotest.py for Go, -rs for pytest).
test: setup
	$(GO) vet ./...
	BLAZING_GO=$(GO) $(PY) build_support/gotest.py -race -count=1 ./...
	$(PY) -m pytest -q -rs tests

# dist/: the sdist, and wheels built from it for x86_64 and (GOARCH=arm64, with Debian's
# aarch64-linux-gnu-gcc for cgo) aarch64, each tagged by the glibc its binaries need.
dist: setup
	rm -rf dist
	$(PY) -m build --sdist --outdir dist .
	$(PY) -m pip wheel --no-deps -q -w dist dist/blazing-*.tar.gz
	GOARCH=arm64 $(PY) -m pip wheel --no-deps -q -w dist dist/blazing-*.tar.gz
	ls -l dist

bench: setup
	$(PY) benchmarks/embedded.py

bench-redis: setup
	$(PY) benchmarks/redis_throughput.py

bench-peers: setup
	$(PY) benchmarks/peers/run.py

# Every benchmark once at tiny sizes: each completes and prints figures (not how fast).
bench-smoke: setup
	$(PY) benchmarks/smoke.py

# The docs' tables, rendered again from benchmarks/results/ (see benchmarks/README.md#tables).
tables: setup
	$(PY) benchmarks/tables.py --write

# docs/images/foreman-charts.png, from a real foreman run (a CPU burst, then an I/O burst).
charts-demo: setup
	$(PY) benchmarks/foreman_charts_demo.py

lint: setup
	@unformatted="$$($(GOFMT) -l $(GO_FILES) </dev/null)"; \
	 if [ -n "$$unformatted" ]; then echo "gofmt -l: not formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(PY) -m ruff check setup.py build_support $(wildcard python tests benchmarks examples)

clean:
	rm -rf build dist python/*.egg-info $(LIB) python/blazing/bin python/blazing/libblazing.h .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
