# The two commands: `make run` brings the platform up, `make test` runs the tests. Both set themselves up.
# The venv's interpreter: the system's own CPython when it is 3.11 or newer, else the first python3 on PATH.
# Distributions build theirs optimised (profile-guided, link-time), as the python image in deploy/ is; a version
# manager's build often is not, and runs the services slower (docs/performance.md). Remove .venv to remake an
# existing one with another interpreter.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test unit lint bench soak docs clean kafka-tools

# The embedded Apache Kafka (deploy/kafka/pom.xml) runs on Java 17+ and is fetched by Maven: Debian's packages when
# either is missing or the Java is older.
kafka-tools:
	@java -XshowSettings:properties -version 2>&1 | grep -Eq 'java.specification.version = (1[7-9]|[2-9][0-9])' \
		&& command -v mvn >/dev/null \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP) kafka-tools
	$(BIN)/iomki up

# A few simulated weeks on a compressed clock, ending with a summary checked against the services' APIs.
demo: $(STAMP) kafka-tools
	$(BIN)/iomki demo

# The static checks, first in `make test` and `make unit`: ruff (pyproject.toml's [tool.ruff]) and mypy ([tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check shared services tooling bench tests
	$(BIN)/mypy

test: $(STAMP) kafka-tools lint
	@# The console's end-to-end tests drive Debian's Chromium and check each page with axe-core, which npm fetches
	@# once.
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm)
	$(BIN)/pytest -q

unit: $(STAMP) lint
	$(BIN)/pytest -q tests/unit

bench: $(STAMP) kafka-tools
	@# Report ingestion is driven by wrk (Debian's package), a C load generator that leaves the CPU to the service.
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(BIN)/python -m bench

# A steady mixed load for IOMKI_SOAK_SECONDS (600): rates, latencies, events, each process's memory.
soak: $(STAMP) kafka-tools
	$(BIN)/python -m bench.soak

docs: $(STAMP)
	$(BIN)/python -m tooling.catalogue

clean:
	rm -rf .data .pytest_cache .hypothesis
