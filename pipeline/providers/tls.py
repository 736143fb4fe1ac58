"""One TLS context for every client of a process: building one (loading the CA bundle) costs
60-300 ms, and a run makes several clients (preflight, one per endpoint, the API watch)."""

from __future__ import annotations

import functools
import ssl


@functools.cache
def context() -> ssl.SSLContext:
    """The default verifying context, with certifi's CA bundle as httpx uses by default."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
