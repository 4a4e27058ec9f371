"""The project's errors: failures a user can act on, said in one line.

The command line (`fedrollup.cli.dispatch`) prints any `FedrollupError` as one line without a traceback;
domain code raises the specific kind and knows nothing of the command line.
"""


class FedrollupError(Exception):
    """A failure said in one line, no traceback."""


class ConfigError(FedrollupError):
    """A bad setting, a missing file, an unreachable service."""
