"""The one exception type that the command line turns into a one-line message."""


class UsageError(Exception):
    """A bad option, a missing file, an unreachable service: said in one line, no traceback."""
