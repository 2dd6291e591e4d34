"""python train.py --help: every config group with its choices and every preset, one line each, no schemas."""

import re
import runpy
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

CONF = ROOT / "conf"


def help_text() -> str:
    proc = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def options(folder: str) -> set[str]:
    return {p.stem for p in (CONF / folder).glob("*.yaml")}


def test_help_lists_every_group_choice_and_preset_with_its_default():
    text = help_text()
    groups = dict(re.findall(r"^  ([a-z/]+):\s+(.+)$", text, flags=re.M))
    defaults = {k: v for d in yaml.safe_load((CONF / "config.yaml").read_text())["defaults"] if isinstance(d, dict)
                for k, v in d.items()}
    for group in ("data", "model", "curriculum", "optimizer", "trainer", "trackers"):
        choices = groups[group].split(" | ")
        assert {c.rstrip("*") for c in choices} == options(group), group
        assert [c for c in choices if c.endswith("*")] == [f"{defaults[group]}*"], group
    assert {c.rstrip("*") for c in groups["hydra/launcher"].split(" | ")} == options("hydra/launcher") | {"basic"}

    presets = text.split("Presets (+experiment=name):\n")[1].split("\n\n")[0].splitlines()
    assert {line.split()[0] for line in presets} == options("experiment")
    assert all(len(line.split(maxsplit=1)) == 2 for line in presets)  # each with what it is
    study = " ".join(text.split("Study variants (+study=name")[1].split("\n\n")[0].splitlines()[1:])
    assert set(study.split()) - {"|"} == options("study")
    assert "base_" not in text  # the ConfigStore schemas are not choices


MOVED_TOOLS = ["sample", "evaluate", "bench", "launch", "gpu_report"]


def test_a_tool_run_by_its_old_module_name_names_the_new_one_and_runs():
    proc = subprocess.run([sys.executable, "-m", "bicameral.sample", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    moved = "python -m bicameral.sample moved to python -m bicameral.tools.sample (installed: bicameral-sample)"
    assert proc.stderr.splitlines()[0].startswith(moved)
    assert "usage: python -m bicameral.tools.sample" in proc.stdout


@pytest.mark.parametrize("tool", MOVED_TOOLS)
@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # other tests imported the tool
def test_each_old_tool_module_runs_its_new_one(tool, monkeypatch, capsys):
    """The same, in this process: python -m runs a module as __main__, as runpy does here."""
    monkeypatch.setattr(sys, "argv", [f"bicameral/{tool}.py", "--help"])
    try:
        runpy.run_module(f"bicameral.{tool}", run_name="__main__", alter_sys=True)
    except SystemExit as stop:  # argparse's --help; torchrun's returns
        assert stop.code in (0, None)
    out, err = capsys.readouterr()
    assert err.startswith(f"python -m bicameral.{tool} moved to python -m bicameral.tools.{tool}")
    assert "usage:" in out
