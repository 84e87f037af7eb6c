"""The controller's exception hierarchy: one base class, one subclass per concern.

The call flow catches `ConsentlineError` at the per-call supervisor and fails closed
(the call goes on unrecorded); the CLI turns it into `Error: <message>` and exit 1.
"""


class ConsentlineError(Exception):
    """Base of every error the controller raises on purpose."""


class ConfigError(ConsentlineError):
    """The YAML configuration is unreadable or invalid.

    `problems` holds one line per problem, each `<file>:<line>: <dotted.path>: expected ..., got ...`.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class CustomerImportError(ConsentlineError):
    """A customers CSV has bad rows; nothing was imported.

    `problems` holds one line per problem, each `<file>:<line>: <column>: expected ..., got ...`.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class IndexStoreError(ConsentlineError):
    """The SQLite index cannot be opened, migrated, read or written."""


class IndexSchemaError(IndexStoreError):
    """The index file was written by a newer version of this program (or is not an index)."""


class IndexWriteError(IndexStoreError):
    """A write to the index failed and was rolled back; the call flow must fail closed."""
