"""Model API clients: one provider-neutral client over several wire dialects.

    from pipeline.providers import Endpoint, make_client
    with make_client(Endpoint(profile="mistral")) as client:
        resp = client.complete(request)
"""
from pipeline.providers.client import ChatClient, ModelReport, make_client
from pipeline.providers.endpoint import Endpoint
from pipeline.providers.errors import (ClientLimitError, ConfigError, FinalError, ModelGoneError, ProviderError,
                                       RequestTooLarge, RetryableError)
from pipeline.providers.registry import ADAPTERS

__all__ = ["ADAPTERS", "ChatClient", "ClientLimitError", "ConfigError", "Endpoint", "FinalError", "ModelGoneError",
           "ModelReport", "ProviderError", "RequestTooLarge", "RetryableError", "make_client"]
