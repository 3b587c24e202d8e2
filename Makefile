# studyflow: `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= quick

.PHONY: help setup study paper-report lint test test-fast ui clean-runs bench stack-up stack-down stack-status deployments compose-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create .venv and install studyflow with its tested versions

# --compile-bytecode: uv does not write .pyc files by default, and with PYTHONDONTWRITEBYTECODE set
# (as on this machine) Python never does, so every process would compile TensorFlow, MLflow and
# Prefect from source again; precompiled, their imports take a fraction of that time (the start-up
# section of bench.tuning measures them: bench/results/tuning.json).
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore uv
	$(PYTHON) -m uv venv --seed --allow-existing --python $(PYTHON) $(VENV)
	$(PYTHON) -m uv pip install --compile-bytecode --python $(BIN)/python -e '.[test]'
	touch $@

study: setup  ## run the whole study (PROFILE=quick|paper) on the embedded store under mlruns/
	$(BIN)/studyflow run study --profile $(PROFILE)

# The published results (docs/results/, linked from the README): the whole study in the paper profile,
# in float32 as the original, on the default store, then its report with run ids instead of local UI
# links. The perceptron and MLP parts over seeds 0, 1 and 2 (their gaps to the original are the
# largest, and replicates say whether they are beyond noise); the others with one seed. About 5 hours
# on 2 cores; the report is regenerated, never edited.
PAPER := --profile paper --set precision=float32 --set report=false
paper-report: setup  ## run the paper-profile study and publish its report in docs/results/ (hours)
	$(BIN)/studyflow run study $(PAPER) --set 'parts=["pca","cnn","inspect","mtl"]'
	$(BIN)/studyflow run study $(PAPER) --set 'parts=["perceptron","mlp"]' --set 'seeds=[0,1,2]'
	$(BIN)/studyflow report --published --out docs/results

lint: setup  ## style: ruff's formatter and linter (configured in pyproject.toml), then the import contracts
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Two test processes (pytest-xdist), one module each at a time (--dist loadscope: a module's
# servers and stores are set up once, in one process). Most tests wait on processes they start
# (studyflow commands, servers, TensorFlow start-up), so one process alone leaves a core idle;
# every test has its own home, ports and temporary folders, so two run side by side.
# The load tests (marker `load`) saturate every core on purpose: they run alone, after the others.
TEST_WORKERS ?= 2
test: setup  ## run every test (real training on subsets, real servers on 127.0.0.1)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope -m "not load"
	$(BIN)/python -m pytest -m load

# The fast tier: the tests without a tier mark (pyproject.toml's markers), in this process only: no server,
# no Python process, trainings of seconds (tests/tiers.py fails a test that breaks this). README: Testing.
test-fast: setup  ## the fast tier: no server, no Python process, trainings of seconds (under 2 min)
	$(BIN)/python -m pytest -m "not slow and not integration and not faults and not load"

ui: setup  ## the MLflow UI (http://127.0.0.1:5000) and the Prefect UI (:4200) over the local stores
	$(BIN)/studyflow ui

stack-up: setup  ## start PostgreSQL, MLflow, Prefect and a worker on 127.0.0.1 (logs, PIDs in .stack/)
	$(BIN)/python stack/native.py up

stack-down:  ## stop exactly what stack-up started (data stays in .stack/)
	$(BIN)/python stack/native.py down

stack-status:  ## what of the native stack runs, and its addresses
	$(BIN)/python stack/native.py status

deployments: setup  ## create the work pool and register prefect.yaml's deployments on PREFECT_API_URL
	PATH=$(CURDIR)/$(BIN):$$PATH stack/register.sh

# Needs root where podman is used (Docker absent): it installs podman and debootstrap if missing.
compose-check:  ## bring the docker-compose stack up (Docker, else podman), run a deployment on it, take it down
	stack/compose_check.sh

bench: setup  ## run every benchmark under bench/ (JSON in bench/results/); BENCH_ARGS=--quick: a smoke test
	$(BIN)/python -m bench.data_loading $(BENCH_ARGS)
	$(BIN)/python -m bench.training_efficiency $(BENCH_ARGS)
	$(BIN)/python -m bench.training_speed $(BENCH_ARGS)
	$(BIN)/python -m bench.precision_choice $(BENCH_ARGS)
	$(BIN)/python -m bench.tracking_overhead $(BENCH_ARGS)
	$(BIN)/python -m bench.study_quick $(BENCH_ARGS)
	$(BIN)/python -m bench.server_start $(BENCH_ARGS)
	$(BIN)/python -m bench.study_paper $(BENCH_ARGS)
	$(BIN)/python -m bench.sweep_pruning $(BENCH_ARGS)
	$(BIN)/python -m bench.tuning $(BENCH_ARGS)
	$(BIN)/python -m bench.fan_out $(BENCH_ARGS)

clean-runs:  ## delete the embedded tracking store (every run under mlruns/)
	find mlruns -mindepth 1 ! -name .gitkeep -delete
