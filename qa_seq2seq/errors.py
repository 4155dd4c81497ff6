"""Errors a user can fix. Entry points print them as one message, without a traceback."""


class UserError(Exception):
    """Bad configuration, data or files: the message says which key, line or file, and the fix."""


class ConfigError(UserError, ValueError):
    """An invalid or incompatible configuration value."""


class DataError(UserError, ValueError):
    """Bad input data, with the file and line to look at."""


class CheckpointError(UserError):
    """A checkpoint or run directory that cannot be used, with what to do instead."""


class NonFiniteError(UserError, FloatingPointError):
    """A NaN/inf loss or gradient, with the step and batch where it appeared."""
