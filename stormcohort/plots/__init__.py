"""Figures of the analyses: result tables in, matplotlib figures out (saved by stormcohort.figures.save)."""
