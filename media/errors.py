"""The media package's exceptions: one base class, a few specific kinds."""


class MediaError(Exception):
    """Base class for every error raised by the media pipeline."""


class ManifestError(MediaError):
    """A manifest line is malformed or contradicts the state rebuilt so far."""


class IntegrityError(MediaError):
    """A chunk file does not match the size or SHA-256 its manifest records."""


class RecordingGone(MediaError):
    """The recording was deleted (only its tombstone is left) or never existed."""


class RecordingClosed(MediaError):
    """Audio was appended to a recording that is already finished."""


class SpoolError(MediaError):
    """The spool file cannot be read or its header does not match the recording."""


class MediaTimeout(MediaError):
    """A lock or a blocking file operation did not complete within its timeout."""
