"""Errors about inputs and configuration. Each has a stable ``type`` used in records."""

from __future__ import annotations


class PixtractError(Exception):
    type = "error"


class UsageError(PixtractError):
    """Bad command line or configuration: exit code 2, before any work."""

    type = "usage_error"


class InputError(PixtractError):
    """A file or page that cannot be processed; becomes a failed record."""

    type = "input_error"


class UnsupportedFile(InputError):
    type = "unsupported_file"


class UnreadableFile(InputError):
    type = "unreadable_file"


class DecompressionBomb(InputError):
    type = "decompression_bomb"


class RenderError(InputError):
    type = "render_error"


class RenderTimeout(RenderError):
    """MuPDF worked on one page longer than the page time limit and was stopped."""

    type = "render_timeout"


class OCRError(PixtractError):
    type = "ocr_error"
