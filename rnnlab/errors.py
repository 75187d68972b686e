"""Errors a user can fix. The CLI prints them as one message, without a traceback."""

import difflib


def closest(name: str, valid) -> str:
    """``"; did you mean 'x'?"`` naming the valid name closest to ``name``, or ``""``: every
    "did you mean" rnnlab prints comes from here."""
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


SHOWN = 80  # characters of a value a message quotes


def shown(value) -> str:
    """``repr(value)`` for a message, shortened past :data:`SHOWN` characters and saying how long
    the value is: a 50 MB string in a file is named in one short line."""
    text = repr(value)
    if len(text) <= SHOWN:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters"
    if isinstance(value, list | tuple | dict):
        size = f"{len(value)} items"
    return f"{text[: SHOWN - 3]}... ({size})"


class RnnlabError(Exception):
    """An error caused by input the user controls (config, plugin, run directory)."""

    exit_code = 2  # the CLI's exit status for it


class ConfigError(RnnlabError):
    """A problem in an experiment file or a --set override, located by file, table and key."""

    def __init__(self, message: str, *, source: str = "", table: str = "", key: str = ""):
        self.detail, self.source, self.table, self.key = message, source, table, key
        where = source
        if table or key:
            loc = ".".join(p if len(p) <= SHOWN else shown(p) for p in (table, key) if p)
            where = f"{where}: [{loc}]" if where else f"[{loc}]"
        super().__init__(f"{where}: {message}" if where else message)

    def located(self, source: str) -> "ConfigError":
        """The same error, naming ``source`` when it named no file yet (raised by a plugin)."""
        if self.source or not source:
            return self
        return ConfigError(self.detail, source=source, table=self.table, key=self.key)


class PluginError(RnnlabError):
    """A plugin could not be loaded, or two plugins claim one name."""


class TrainingDiverged(RnnlabError):
    """A loss or gradient became NaN or infinite; the run stopped and kept its last good
    checkpoint. Exit status 3: the input was valid, the numbers were not."""

    exit_code = 3


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on SIGINT or SIGTERM after saving a checkpoint (or at once, on a second
    signal). A KeyboardInterrupt, so that code that knows nothing of rnnlab stops too; the CLI
    exits with status 128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
