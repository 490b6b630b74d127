"""The project's exceptions: a problem the user can fix, reported as one line and exit status 2."""


class StageError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""


class DataError(StageError):
    """Bad input: the message names the file, the column or value, and what to do."""


class ConfigError(StageError):
    """A bad value in params.yaml: the message names the key and what is allowed."""
