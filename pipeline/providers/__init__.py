"""Model API clients: one provider-neutral client over several wire dialects.

    from pixtract.providers import Endpoint, make_client
    with make_client(Endpoint(profile="mistral")) as client:
        resp = client.complete(request)
"""
from pixtract.providers.client import ChatClient, ModelReport, make_client
from pixtract.providers.endpoint import Endpoint
from pixtract.providers.errors import (ClientLimitError, ConfigError, FinalError, ModelGoneError, ProviderError,
                                       RequestTooLarge, RetryableError)
from pixtract.providers.registry import ADAPTERS

__all__ = ["ADAPTERS", "ChatClient", "ClientLimitError", "ConfigError", "Endpoint", "FinalError", "ModelGoneError",
           "ModelReport", "ProviderError", "RequestTooLarge", "RetryableError", "make_client"]
