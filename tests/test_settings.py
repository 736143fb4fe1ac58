"""Each scalar setting is declared once (pipeline/config.py SETTINGS, issue 15): its flag, its
environment variable and its job-file key all reach the same field, with the same type and
range, and the flag's help states the field's real default."""

from __future__ import annotations

import pytest

from pixtract.config import SETTINGS, RunConfig, build_config, env_layer, load_job
from pixtract.errors import UsageError
from pixtract.flows.cli import build_parser, flags_layer


def _sample(setting):
    """A valid value for the setting that differs from its default."""
    if setting.choices:
        return next(c for c in setting.choices if c != setting.default)
    if setting.type is str:
        return "sample_value"
    value = setting.type((setting.lo or 0) + 3)
    return value if value != setting.default else value + 1


def _get(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


FLAGGED = [s for s in SETTINGS if s.flag]
FOLDERS = {"out", "cache_dir"}  # job-file paths: relative to the job file


def test_the_folders_are_declared_as_folders():
    assert {s.path for s in SETTINGS if s.folder} == FOLDERS


@pytest.mark.parametrize("setting", FLAGGED, ids=lambda s: s.flag)
def test_a_flag_reaches_its_field_with_its_declared_type(setting):
    value = _sample(setting)
    args = build_parser().parse_args(["run", "x.pdf", "--out", "o", setting.flag, str(value)])
    cfg = build_config({"inputs": ["x.pdf"], "out": "o"}, flags_layer(args))
    assert _get(cfg, setting.path) == value and type(_get(cfg, setting.path)) is setting.type


@pytest.mark.parametrize("setting", [s for s in FLAGGED if s.lo is not None], ids=lambda s: s.flag)
def test_a_flag_below_its_range_is_refused(setting, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", "x.pdf", setting.flag, str(setting.lo - 1)])
    assert info.value.code == 2 and setting.flag in capsys.readouterr().err


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.env], ids=lambda s: s.env)
def test_the_environment_variable_and_the_job_key_reach_the_same_field(setting, tmp_path):
    value = _sample(setting)
    cfg = build_config({"inputs": ["x.pdf"], "out": "o"}, env_layer({setting.env: str(value)}))
    assert _get(cfg, setting.path) == value
    *table, key = setting.path.split(".")
    literal = f'"{value}"' if setting.type is str else str(value)
    job = tmp_path / "job.toml"
    job.write_text((f"[{table[0]}]\n" if table else "") + f"{key} = {literal}\n")
    cfg = build_config({"inputs": ["x.pdf"], "out": "o"}, load_job(str(job)))
    # a job file's relative folders are relative to the job file's own folder
    assert _get(cfg, setting.path) == (str(tmp_path / value) if setting.path in FOLDERS else value)
    if setting.lo is not None:
        with pytest.raises(UsageError, match=setting.env):
            env_layer({setting.env: str(setting.lo - 1)})


def test_every_setting_flag_is_offered_and_its_help_states_the_real_default():
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    helps = {o: a.help for a in run._actions for o in a.option_strings}
    assert {s.flag: s.help_text() for s in FLAGGED} == {s.flag: helps.get(s.flag) for s in FLAGGED}
    mistral, local = RunConfig(inputs=[], out="", profile="mistral"), RunConfig(inputs=[], out="")
    for s in FLAGGED:
        same = _get(mistral, s.path) == _get(local, s.path)  # else the help names both
        if "default" in s.help and s.default not in (None, "") and same:
            assert str(s.default) in s.help_text(), s.flag
