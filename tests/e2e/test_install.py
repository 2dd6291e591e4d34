"""Installed, bicameral works anywhere: the wheel carries the configs and the console scripts, and each tool
names itself as it was started."""

import shutil
import subprocess
import sys
import zipfile

import pytest

from bicameral.report import __main__ as compare
from bicameral.tools import bench, evaluate, sample
from tests.conftest import ROOT

SCRIPTS = {"bicameral-train": "bicameral.tools.train:cli", "bicameral-sample": "bicameral.tools.sample:cli",
           "bicameral-eval": "bicameral.tools.evaluate:cli", "bicameral-compare": "bicameral.report.__main__:cli",
           "bicameral-bench": "bicameral.tools.bench:cli"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel, built from a copy of what it is made of, so the build leaves nothing in the checkout."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("bicameral", "conf"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(out), str(source)], check=True, capture_output=True, timeout=300)
    [path] = out.glob("bicameral-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_carries_every_config_and_the_entry_point(wheel):
    names = set(wheel.namelist())
    shipped = {name.removeprefix("bicameral/conf/") for name in names if name.startswith("bicameral/conf/")}
    in_checkout = {str(p.relative_to(ROOT / "conf")) for p in (ROOT / "conf").rglob("*.yaml")}
    assert in_checkout and in_checkout <= shipped
    assert "bicameral/tools/train.py" in names and "train.py" not in names


def test_the_wheel_installs_each_tool_as_a_console_script(wheel):
    [entry_points] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    for script, target in SCRIPTS.items():
        assert f"{script} = {target}" in text


@pytest.mark.parametrize("module, tool", [(sample, "bicameral-sample"), (evaluate, "bicameral-eval"),
                                          (compare, "bicameral-compare"), (bench, "bicameral-bench")])
def test_each_tool_names_itself_and_takes_the_same_device_flag(module, tool, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [f"/venv/bin/{tool}", "--help"])
    with pytest.raises(SystemExit):
        module.main(["--help"])
    usage = capsys.readouterr().out
    assert usage.startswith(f"usage: {tool} ")
    assert ("--device DEVICE" in usage) == (module is not compare)


@pytest.mark.slow
def test_a_fresh_non_editable_install_trains_from_an_empty_dir(wheel, tmp_path):
    """pip install of the wheel into a new venv, then bicameral-train in an empty folder (needs the package index)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "torch==2.13.0"], check=True, timeout=1200)
    subprocess.run([*pip, wheel.filename], check=True, timeout=1200)
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([str(venv / "bin" / "bicameral-train"), "+experiment=smoke", "trackers=local"], cwd=empty,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Done: step 20" in proc.stdout
    [run_dir] = (empty / "outputs").glob("*/*")
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "metrics.jsonl").is_file()
