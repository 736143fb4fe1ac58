"""Everything that can stop a run before any page, shared by ``pixtract run`` and the Python
API so both refuse the same runs. Kept light (imports inside the functions): the command line
runs these checks while Prefect is still importing."""

from __future__ import annotations


def check_run(cfg, overwrite: bool, while_waiting=None):
    """Everything that can stop a run before any page, in the order a user would fix it:
    configuration, prices for a budget, keys, inputs, then the endpoints (preflight) and the
    output folder. ``while_waiting()`` is called between the two halves: work that may overlap
    the network (it is never reached on a plain usage error). Returns the preflight report;
    raises UsageError or ConfigError."""
    from .discover import nothing_found
    from .errors import UsageError
    from .outputs import check_out_dir
    from .preflight import preflight

    cfg.validate()
    cfg.check_prices()
    _check_key(cfg)
    why = nothing_found(cfg.inputs, [cfg.out])
    if why:
        raise UsageError(why)
    if while_waiting is not None:
        while_waiting()
    checked = preflight(cfg) if cfg.endpoint.remote else None
    check_out_dir(cfg.out, cfg.fingerprint(), overwrite=overwrite)
    return checked


def _check_key(cfg) -> None:
    """Fail fast, before Prefect starts, when a model profile has no key."""
    for spec in [cfg.endpoint] + ([cfg.vision_alt] if cfg.vision_alt else []):
        if spec.remote:
            spec.endpoint().resolved()
