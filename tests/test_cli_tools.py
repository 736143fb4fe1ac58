"""doctor, config show and precedence, quiet/JSON logs, and output-folder safety."""

import json
import os
import sys

import pytest

from pixtract.flows.cli import EXIT_FAILURES, EXIT_OK, EXIT_USAGE, main
from tests.emulator.helpers import FAKE_KEY


def test_doctor_without_tesseract_says_how_to_fix(tmp_path, monkeypatch, capsys):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(sys.executable, bindir / "python3")
    monkeypatch.setenv("PATH", str(bindir))  # a machine whose PATH has no tesseract
    monkeypatch.delenv("PIXTRACT_TESSERACT", raising=False)
    assert main(["doctor"]) == EXIT_FAILURES
    out = capsys.readouterr().out
    assert "[FAIL] tesseract" in out and "apt-get install tesseract-ocr" in out
    assert "[ok] python" in out and "[ok] prefect" in out


def test_doctor_with_bad_key_against_emulator(emu, monkeypatch, capsys):
    emu.reset()
    emu.configure(api_keys=["the-right-key"])
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    assert main(["doctor", "--profile", "mistral", "--base-url", emu.base_url("mistral")]) == EXIT_FAILURES
    out = capsys.readouterr().out
    assert "[FAIL] endpoint" in out and "refused" in out
    assert FAKE_KEY not in out


def test_doctor_all_good_and_retired_model(emu, monkeypatch, capsys):
    emu.reset()
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    assert main(["doctor", "--profile", "mistral", "--base-url", emu.base_url("mistral")]) == EXIT_OK
    assert "[ok] model pixtral-large-2411" in capsys.readouterr().out
    emu.configure(retired_models=["pixtral-large-2411"])
    assert main(["doctor", "--profile", "mistral", "--base-url", emu.base_url("mistral")]) == EXIT_FAILURES
    out = capsys.readouterr().out
    assert "[FAIL] model pixtral-large-2411" in out and "Mistral Medium 3.5" in out


def test_doctor_missing_key(monkeypatch, capsys):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    assert main(["doctor", "--profile", "openrouter"]) == EXIT_FAILURES
    assert "export OPENROUTER_API_KEY=" in capsys.readouterr().out


def _show(capsys, *args) -> dict:
    assert main(["config", "show", *args]) == EXIT_OK
    return json.loads(capsys.readouterr().out)


def test_config_precedence_flags_env_job_profile(tmp_path, monkeypatch, capsys):
    for var in ("PIXTRACT_MAX_EDGE", "PIXTRACT_VISION_MODEL", "PIXTRACT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    job = tmp_path / "job.toml"
    job.write_text('inputs = ["docs"]\nprofile = "mistral"\n[render]\nmax_edge = 800\n'
                   '[endpoint]\nvision_model = "job-vision"\n')
    # profile defaults only
    d = _show(capsys, "x.pdf", "--profile", "mistral")
    assert d["render"]["max_edge"] == 1024 and d["endpoint"]["vision_model"] == "pixtral-large-2411"
    # job file beats profile defaults
    d = _show(capsys, "--job", str(job))
    assert d["render"]["max_edge"] == 800 and d["endpoint"]["vision_model"] == "job-vision"
    assert d["inputs"] == [str(tmp_path / "docs")]  # relative to the job file
    # environment beats the job file
    monkeypatch.setenv("PIXTRACT_MAX_EDGE", "900")
    monkeypatch.setenv("PIXTRACT_VISION_MODEL", "env-vision")
    d = _show(capsys, "--job", str(job))
    assert d["render"]["max_edge"] == 900 and d["endpoint"]["vision_model"] == "env-vision"
    # flags beat everything
    d = _show(capsys, "--job", str(job), "--max-edge", "1000", "--vision-model", "flag-vision")
    assert d["render"]["max_edge"] == 1000 and d["endpoint"]["vision_model"] == "flag-vision"


def test_config_show_masks_secrets(monkeypatch, capsys):
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)
    assert main(["config", "show", "x.pdf", "--profile", "mistral", "--password", "pw-SECRET-9"]) == EXIT_OK
    out = capsys.readouterr().out
    assert FAKE_KEY not in out and "pw-SECRET-9" not in out
    d = json.loads(out)
    assert d["endpoint"]["api_key"] == "***" and d["endpoint"]["api_key_from"] == "MISTRAL_API_KEY"
    assert d["password"] == "***"


def test_bad_job_file_is_usage_error(tmp_path, capsys):
    job = tmp_path / "job.toml"
    job.write_text("inputs = [\n")
    assert main(["config", "show", "--job", str(job)]) == EXIT_USAGE
    assert "not valid TOML" in capsys.readouterr().err
    job.write_text('inputs = ["a"]\ncolour = "blue"\n')
    assert main(["config", "show", "--job", str(job)]) == EXIT_USAGE
    assert "unknown setting" in capsys.readouterr().err


@pytest.mark.prefect
def test_quiet_and_json_logs(samples, tmp_path, capsys):
    assert main(["run", str(samples / "rotated.pdf"), "--out", str(tmp_path / "q"), "--quiet"]) == EXIT_OK
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("pixtract: COMPLETE: all 1 records")
    assert main(["run", str(samples / "rotated.pdf"), "--out", str(tmp_path / "j"), "--log-json"]) == EXIT_OK
    cap = capsys.readouterr()
    summary = json.loads(cap.out.strip().splitlines()[-1])
    assert summary["event"] == "summary" and summary["records"] == 1
    events = [json.loads(line) for line in cap.err.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["document", "record"]
    assert events[1]["status"] == "ok" and events[1]["route"] == "local-text"


@pytest.mark.prefect
def test_another_runs_outputs_are_not_overwritten_silently(samples, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(samples / "rotated.pdf"), "--out", str(out), "-q"]) == EXIT_OK
    # the same job again (a rerun) may write into its folder
    assert main(["run", str(samples / "rotated.pdf"), "--out", str(out), "-q"]) == EXIT_OK
    # a different job may not
    assert main(["run", str(samples / "chart.png"), "--out", str(out), "-q"]) == EXIT_USAGE
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "rotated.md").exists()
    assert main(["run", str(samples / "chart.png"), "--out", str(out), "-q", "--overwrite"]) == EXIT_OK
    assert (out / "chart.md").exists() and not (out / "rotated.md").exists()


def test_non_pixtract_folder_is_refused(tmp_path, samples, capsys):
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "todo.md").write_text("mine")
    assert main(["run", str(samples / "rotated.pdf"), "--out", str(mine)]) == EXIT_USAGE
    assert main(["run", str(samples / "rotated.pdf"), "--out", str(mine), "--overwrite"]) == EXIT_USAGE
    assert (mine / "todo.md").read_text() == "mine"
    assert "not a pixtract output folder" in capsys.readouterr().err


def test_every_command_has_help_with_examples(capsys):
    for cmd in (["run"], ["estimate"], ["models"], ["report"], ["doctor"], ["config"]):
        with pytest.raises(SystemExit) as e:
            main([*cmd, "--help"])
        assert e.value.code == 0
        assert "example" in capsys.readouterr().out, cmd
