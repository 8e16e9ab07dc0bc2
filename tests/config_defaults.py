"""The analyses' complete settings as the workflow gets them: the config schema's defaults
(``stormcohort/schemas/config.schema.yaml``) filled in as Snakemake's
``validate(..., set_default=True)`` fills them, for tests that call an analysis directly."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from importlib.resources import files

import jsonschema
import yaml

SCHEMA = "config.schema.yaml"


def schema_defaults(section: str, **given) -> dict:
    """The complete settings of ``analyses.<section>``: ``given`` plus the config schema's
    default for every other key (what Snakemake's ``validate(..., set_default=True)`` fills in)."""
    schema = config_schema()["properties"]["analyses"]["properties"][section]
    return fill_defaults(given, schema)


def config_schema() -> dict:
    """The study config's JSON schema, shipped with the package (``stormcohort/schemas``)."""
    return yaml.safe_load((files("stormcohort") / "schemas" / SCHEMA).read_text(encoding="utf-8"))


def fill_defaults(instance: dict, schema: Mapping) -> dict:
    """``instance`` validated against ``schema`` with each missing key's ``default`` set
    (recursively, as Snakemake's ``validate(..., set_default=True)``)."""
    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, inst, sch):
        if isinstance(inst, dict):
            for key, sub in properties.items():
                if "default" in sub:
                    inst.setdefault(key, copy.deepcopy(sub["default"]))
        yield from base.VALIDATORS["properties"](validator, properties, inst, sch)

    validator = jsonschema.validators.extend(base, {"properties": set_defaults})
    out = copy.deepcopy(dict(instance))
    validator(dict(schema)).validate(out)
    return out
