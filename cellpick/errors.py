"""Errors the user can act on.

`CellpickError` is the root. `DataError` (the CSV) and `ConfigError` (options, recipes)
also inherit `ValueError`, so library callers can catch either. The CLI turns any
`CellpickError` into one line on stderr and exit code 2; anything else is exit code 1.
`FitFailed` is a failure that is not the user's (every trial of a cell failed: out of
memory, NaN): one line naming the cause and exit code 1, without a traceback.
Messages say what is wrong, where (file, column, row) and how to fix it, in one line.
"""


class CellpickError(Exception):
    """A problem with the user's input or options (exit code 2)."""


class DataError(CellpickError, ValueError):
    """The data file cannot be used as given."""


class ConfigError(CellpickError, ValueError):
    """An option or recipe value is invalid."""


class ExportError(CellpickError):
    """An export directory is missing, unknown or altered."""


class FitFailed(Exception):
    """The fit could not finish for a reason that is not the user's input (exit code 1)."""
