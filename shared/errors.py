"""Errors a user can act on.

A `UserError` means bad usage or bad input: the CLI prints its message as a single
`error:` line and exits with code 2, without a traceback. Anything else is a bug and
exits with code 1, its traceback kept in the run's log file.
"""


class UserError(Exception):
    """Bad usage or bad input, reported as one `error:` line and exit code 2."""


class TargetMissed(Exception):
    """A job ran but missed a quality target (a full `deepfield tour`): exit code 3."""
