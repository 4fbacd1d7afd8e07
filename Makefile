# Two commands do all set-up on a fresh machine: `make report` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WORKSPACE ?= .

.PHONY: report test bench validate shell clean install demo screenshot

# Create the virtual environment and install the package (+ test tools) once,
# again only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Demo athletes are written only when data/raw/ holds no athlete data yet.
report: $(STAMP)
	@if ! $(BIN)/pipeline --workspace $(WORKSPACE) demo --if-empty; then exit 1; fi
	$(BIN)/pipeline --workspace $(WORKSPACE) run

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

# Accuracy of the block verdicts on a seeded matrix of simulated athletes (bench/validate.py): one table,
# targets met or missed; 8-25 min on 2 cores (VALIDATE_ARGS=--quick for a few minutes).
validate: $(STAMP)
	$(BIN)/python -m bench.validate $(VALIDATE_ARGS)

# Read-only DuckDB shell on the warehouse (write access: make shell MODE=rw).
shell: $(STAMP)
	$(BIN)/pipeline --workspace $(WORKSPACE) shell $(if $(filter rw,$(MODE)),--write,)

# The README's picture of a report page: the demo report (built if missing), rendered in headless Chromium
# at phone width and saved as a small palette PNG.
SCREENSHOT ?= docs/img/report-demo_gain.png
screenshot: $(STAMP)
	@test -f reports/demo_gain/index.html || $(MAKE) report
	$(BIN)/python -m pipeline.report.screenshot reports/demo_gain/index.html $(SCREENSHOT)

demo: $(STAMP)
	$(BIN)/pipeline --workspace $(WORKSPACE) demo

# Removes generated outputs (warehouse, reports); never touches data/raw/.
clean:
	rm -rf data/processed/*.duckdb data/processed/*.duckdb.wal data/processed/*.lock data/processed/*.owner \
		data/processed/vega-bundle-*.js \
		reports/*/ reports/index.html reports/*.png bench/out .pytest_cache
