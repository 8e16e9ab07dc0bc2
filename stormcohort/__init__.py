"""stormcohort: a reproducible cohort pipeline for cytokine storm syndromes treated with anakinra."""

__version__ = "0.1.0"
