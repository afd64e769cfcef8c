"""Exit codes of the ``freshrank`` command line that scripts can rely on."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3  # a server or backend could not be reached
EXIT_NO_DATA = 4  # the input held nothing usable (no valid post, or all late): nothing was written


class Unreachable(RuntimeError):
    """A server or backend could not be reached (or did not answer): the command exits EXIT_UNAVAILABLE."""
