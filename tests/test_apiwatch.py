"""The console during a run whose Prefect server dies: Prefect's own tracebacks about the lost
API are hidden (the run says it once, in its own words), and nothing else is."""

import io
import logging
import threading

import httpx

from pixtract.flows.apiwatch import quiet_api_loss, unreachable


def _connect_error_chain() -> BaseException:
    try:
        try:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        except httpx.ConnectError as e:
            raise RuntimeError("could not propose state") from e
    except RuntimeError as e:
        return e


def _prefect_logger(name: str) -> logging.Logger:
    """A logger under ``prefect`` with its own level: Prefect's logging set-up (or a watch that
    quieted ``prefect`` in an earlier test of this process) cannot change what it lets through."""
    logger = logging.getLogger(f"prefect.pixtract_test.{name}")
    logger.setLevel(logging.DEBUG)
    return logger


def _console():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    return stream, handler


def test_a_connect_error_anywhere_in_the_chain_is_the_api_gone():
    assert unreachable(_connect_error_chain())
    assert unreachable(httpx.RemoteProtocolError("server disconnected"))
    assert not unreachable(ValueError("a page failed"))
    assert not unreachable(None)


def test_prefects_traceback_about_the_lost_api_is_hidden_and_marks_it_lost():
    stream, handler = _console()
    lost = threading.Event()
    try:
        with quiet_api_loss(lost):
            error = _connect_error_chain()
            _prefect_logger("flow_runs").error("Encountered exception", exc_info=error)
            assert lost.is_set()
            _prefect_logger("flow_runs").error("a flow failed", exc_info=ValueError("bad page"))
            logging.getLogger("pixtract").error("ours", exc_info=error)
        _prefect_logger("flow_runs").error("after the run", exc_info=error)
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert "Encountered exception" not in text
    assert "a flow failed" in text and "bad page" in text  # other Prefect errors still show
    assert "ours" in text  # only Prefect's own complaints are hidden
    assert "after the run" in text  # the filter leaves with the run


def test_without_a_lost_api_nothing_is_hidden():
    stream, handler = _console()
    lost = threading.Event()
    try:
        with quiet_api_loss(lost):
            _prefect_logger("task_runs").warning("retrying page 3")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "retrying page 3" in stream.getvalue() and not lost.is_set()
