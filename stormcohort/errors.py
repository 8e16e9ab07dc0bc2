"""Errors that stop a run: the delivery itself is malformed, not just some of its rows."""

from __future__ import annotations


class ExtractError(Exception):
    """A structural problem in an extract or a centre map (missing file, sheet or column,
    unreadable workbook, invalid map). The message names the file (and sheet or column)
    and what was expected; row-level problems go to the exclusions ledger instead."""
