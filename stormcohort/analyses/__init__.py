"""Analyses: the analysis dataset and long tables in, output tables and model summaries out (no I/O)."""
