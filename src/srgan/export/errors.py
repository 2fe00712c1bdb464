"""The one error every export raises."""


class ExportError(ValueError):
    """A model cannot be exported: no checkpoint or no EMA in it, an unknown source, a missing
    package, an unwritable file, ..."""
