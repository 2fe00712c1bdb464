"""Moved to `srgan.export.generator` (one export package, one ExportError); this path keeps
working."""

from srgan.export.errors import ExportError
from srgan.export.generator import (
    export_generator,
    export_run_generator,
    generator_from_state,
    model_card,
    resolve_checkpoint,
)

__all__ = ["ExportError", "export_generator", "export_run_generator", "generator_from_state",
           "model_card", "resolve_checkpoint"]
