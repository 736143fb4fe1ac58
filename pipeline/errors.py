"""pixtract's errors: one tree with one root, so ``except PixtractError`` catches everything the
library raises on purpose. Each class has a stable ``type``, the string records and manifests
carry (``error.type``); nothing downstream matches words in messages.

    PixtractError
    ├── UsageError                bad command line or configuration: exit 2, before any work
    ├── InputError                a file or page that cannot be processed: a failed record
    │   ├── UnsupportedFile
    │   ├── UnreadableFile
    │   │   └── OpenTimeout
    │   ├── DecompressionBomb
    │   └── RenderError
    │       ├── RenderTimeout
    │       ├── RenderCrashed
    │       └── RenderOutOfMemory
    ├── OCRError
    ├── PageStalled               a page not answered within the stall limit (pagethreads.py)
    ├── TooComplex                a page whose drawing would explode (complexity.py)
    ├── ProviderError             a model call failed (providers/errors.py draws its branch)
    │   ├── ConfigError
    │   ├── RetryableError        rate limits, timeouts, 5xx, dropped or malformed responses
    │   └── FinalError            what a retry cannot fix: 400, 401, 402, 403, 404 (ModelGoneError), ...
    ├── AnswerError               a response that cannot count as an answer (answers.py)
    ├── BudgetExceeded            a request that would pass the spending limit (guards.py)
    ├── RungFailed, Interrupted   a rung gave no answer that counts; the run stopped (ladder.py)
    ├── LedgerError               records that do not balance against the plan (ledger.py)
    ├── BatchPending              a request waiting in a Mistral batch job: a pending record (batchmode.py)
    └── InboxError, PartFailed    an inbox run that cannot go on; a part that did not finish (inbox.py)

Each class lives beside the code that raises it and derives from this root; this module holds
the root and the input errors. An unexpected error (a bug) is not a PixtractError: raised in a
MuPDF worker process it comes back as ``workers.RemoteError``, carrying the original type name.
"""

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
