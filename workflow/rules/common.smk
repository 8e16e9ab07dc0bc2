# Paths and values every rule shares, resolved once from the validated config.
from pathlib import Path

from stormcohort.delivery import read_delivery

DELIVERY = Path(config["delivery"])
DELIVERY_META = read_delivery(DELIVERY, config["centres"])
RUN = config.get("run") or DELIVERY.name
OUT = f"results/{RUN}"
CENTRES = config["centres"]
TABLES = ["patients", "admissions", "anakinra", "labs", "adverse_events"]


def centre_files(wildcards):
    """Every file the centre delivered: a change to any of them reruns that centre."""
    return DELIVERY_META.files[wildcards.centre]


# Each analysis rules file appends the files its rules make; `rule all` asks for them.
ANALYSIS_TARGETS = []
