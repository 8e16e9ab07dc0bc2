# One command runs everything: `make run` creates .venv/ (first time only) and runs the
# workflow on the embedded delivery (DELIVERY=path for another, COMPARE_TO=results/<run> to diff
# against an older run); `make test` runs the test suite (installing Chromium first if missing);
# `make lint` runs `snakemake --lint` and ruff.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2

.PHONY: run test lint browser bench venv clean

# Another delivery, and what changed since an older run (README "Updated extracts"):
#   make run DELIVERY=data/raw/update1 COMPARE_TO=results/example   -> results/update1/ and its diff/
# (--config goes last: it takes every word after it.)
SMK_CONFIG = $(strip $(if $(DELIVERY),delivery=$(DELIVERY)) $(if $(COMPARE_TO),compare_to=$(COMPARE_TO)))

run: venv
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --cores $(CORES) $(ARGS) $(if $(SMK_CONFIG),--config $(SMK_CONFIG))

test: venv browser
	$(BIN)/pytest $(ARGS)

# Both linters run, and the target fails if either finds something: `snakemake --lint` less the
# lints accepted with their reason in ci/snakemake_lint.py, and ruff as configured in
# pyproject.toml ([tool.ruff]; `ruff format` is not adopted yet).
lint: venv
	@status=0; \
	echo "snakemake --lint"; $(BIN)/python ci/snakemake_lint.py || status=1; \
	echo "$(BIN)/ruff check ."; $(BIN)/ruff check . || status=1; \
	exit $$status

# The report's browser test (tests/test_report_browser.py) needs Chromium and fails without it.
# Found as the test finds it ($$STORMCOHORT_CHROMIUM, `chromium` on the PATH, /usr/bin/chromium);
# otherwise Debian's package is installed, through sudo when not root.
CHROMIUM_INSTALL := apt-get update && apt-get install -y chromium
browser:
	@if [ -n "$$STORMCOHORT_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then \
	    exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo "; \
	else \
	    echo "Chromium is needed by the browser tests and is missing; install it as root with:" >&2; \
	    echo "    $(CHROMIUM_INSTALL)" >&2; \
	    exit 1; \
	fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "Chromium is needed by the browser tests and is missing, and apt-get is not here (not Debian):" >&2; \
	    echo "install Chromium, then set STORMCOHORT_CHROMIUM=/path/to/chromium if it is not on the PATH" >&2; \
	    exit 1; \
	fi; \
	echo "Chromium is missing: installing Debian's package ($${sudo}apt-get install -y chromium)"; \
	$${sudo}apt-get update -qq && $${sudo}apt-get install -y -qq chromium >/dev/null || { \
	    echo "Installing Chromium failed; the browser tests need it. Install it as root with:" >&2; \
	    echo "    $(CHROMIUM_INSTALL)" >&2; \
	    exit 1; \
	}

bench: venv
	$(BIN)/python -m stormcohort.bench $(ARGS)

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 not found as '$(PYTHON)': set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

clean:
	rm -rf results/*/ .snakemake
