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


class RenderCrashed(RenderError):
    """The worker process rendering a page died (segfault, abort); see pixtract.workers."""

    type = "render_crashed"


class RenderOutOfMemory(RenderError):
    """A page needed more memory than a render worker may take; see pixtract.workers."""

    type = "render_out_of_memory"


# A page step that stalled or killed its worker process (pipeline/workers.py).
WORKER_FAILURES = (RenderTimeout, RenderCrashed, RenderOutOfMemory)


class OpenTimeout(UnreadableFile):
    """Opening a document (and reading its page tree) took longer than the step time limit."""

    type = "open_timeout"


class OCRError(PixtractError):
    type = "ocr_error"


class PageStalled(PixtractError):
    """A page was still not answered after the stall time limit (pipeline/pagethreads.py):
    the run stopped waiting for it and went on."""

    type = "page_stalled"
