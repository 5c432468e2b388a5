"""Exceptions for expected outcomes. The CLI maps each to an exit code and prints it without a traceback.

| exception             | exit | meaning                                                           |
|-----------------------|------|-------------------------------------------------------------------|
| SpecError             | 2    | bad input: unknown profile, malformed file, impossible numbers    |
| InfeasibleError       | 3    | the request is valid but no plan satisfies it (says what binds)   |
| SolverError           | 4    | a backend failed or returned nothing usable (names the backend)   |
| SolverUnavailableError| 5    | a requested backend is not installed (says what to install)       |
Anything else is a bug and keeps its traceback (exit 1).
"""

from typing import Any


class ParplanError(Exception):
    """Base of all expected parplan errors."""

    exit_code = 1


class SpecError(ParplanError, ValueError):
    """Invalid input; the message names the file and/or field path and the valid choices."""

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None):
        self.field = field
        self.source = source
        where = ": ".join(p for p in (source, field) if p)
        super().__init__(f"{where}: {message}" if where else message)


class InfeasibleError(ParplanError):
    """No plan satisfies the request; the message says which constraint binds, with numbers."""

    exit_code = 3

    def __init__(self, message: str, *, details: dict[str, Any] | None = None):
        self.details = details or {}
        super().__init__(message)


class SolverError(ParplanError):
    """A solver backend failed."""

    exit_code = 4


class SolverUnavailableError(SolverError):
    """A requested solver backend is not installed."""

    exit_code = 5


def require(condition: bool, message: str, *, field: str | None = None, source: str | None = None) -> None:
    """Raise SpecError(message) unless condition holds. Used in __post_init__ validation (never `assert`)."""
    if not condition:
        raise SpecError(message, field=field, source=source)
