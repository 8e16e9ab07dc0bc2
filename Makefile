# One command runs everything: `make run` creates .venv/ (first time only) and runs the
# workflow on the embedded delivery (DELIVERY=path for another, COMPARE_TO=results/<run> to diff
# against an older run); `make test` runs the test suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2

.PHONY: run test bench venv clean

# Another delivery, and what changed since an older run (README "Updated extracts"):
#   make run DELIVERY=data/raw/update1 COMPARE_TO=results/example   -> results/update1/ and its diff/
# (--config goes last: it takes every word after it.)
SMK_CONFIG = $(strip $(if $(DELIVERY),delivery=$(DELIVERY)) $(if $(COMPARE_TO),compare_to=$(COMPARE_TO)))

run: venv
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --cores $(CORES) $(ARGS) $(if $(SMK_CONFIG),--config $(SMK_CONFIG))

test: venv
	$(BIN)/pytest $(ARGS)

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
