"""Errors that stop a run: the delivery itself is malformed, not just some of its rows."""

from __future__ import annotations


class ExtractError(Exception):
    """A structural problem in an extract or a centre map (missing file, sheet or column,
    unreadable workbook, invalid map). The message names the file (and line, sheet or column)
    and what was expected, then the fix (`Fix: ...`); row-level problems go to the exclusions
    ledger instead. Messages never quote a cell's value: it could be an identifier."""

    def __init__(self, message: str, fix: str | None = None):
        self.problem = message
        self.fix = fix
        super().__init__(f"{message}. Fix: {fix}" if fix else message)
