"""The exceptions genzoo raises. Every one says what went wrong, where, and what to do."""


class GenzooError(Exception):
    """Base class: catch this to catch everything genzoo raises on bad input."""


class CheckpointError(GenzooError):
    """A checkpoint could not be read, or does not fit the model (wrong family, keys, shapes)."""


class HubError(GenzooError):
    """A name or path could not be resolved to local files (missing, offline, bad checksum)."""


class UnknownModelError(GenzooError, KeyError):
    """A model name is not in the catalog and is not a path."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(GenzooError, ValueError):
    """An argument or a config value is out of range."""


class NotFoundError(HubError, CheckpointError):
    """A local path that names no file or folder (both a lookup and a checkpoint problem: catch either)."""


class NumericalError(GenzooError, ArithmeticError):
    """A computation produced NaN or infinity (e.g. fp16 overflow, a temperature that underflows)."""
