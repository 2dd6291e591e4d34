"""The README's "Extending" section, run exactly as written: a plug-in curriculum and optimizer
from a folder outside the package, found through hydra.searchpath."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bicameral.checkpoint.format import load_checkpoint
from tests.conftest import ROOT, read_jsonl


def readme_block(first_line: str) -> str:
    """The fenced code block of README.md that starts with `first_line`."""
    for body in re.findall(r"```[a-z]*\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S):
        if body.startswith(first_line + "\n"):
            return body
    raise AssertionError(f"README.md has no code block starting with {first_line!r}")


README_FILES = ("my_curricula.py", "my_conf/curriculum/plateau.yaml", "my_conf/optimizer/rmsprop.yaml")


def write_readme_files(folder: Path) -> None:
    for name in README_FILES:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(readme_block(f"# {name}"))


def run_train(folder: Path, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
           "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    cmd = [sys.executable, "train.py", f"hydra.searchpath=[file://{folder / 'my_conf'}]", *overrides,
           f"hydra.run.dir={run_dir}"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_plateau_curriculum_and_rmsprop_from_a_user_folder(tmp_path, corpus_cache):
    folder = tmp_path / "user"
    write_readme_files(folder)
    assert not (ROOT / "bicameral" / "my_curricula.py").exists()
    run_dir = tmp_path / "run"
    proc = run_train(folder, run_dir, "+experiment=smoke", "trackers=local", "curriculum=plateau", "optimizer=rmsprop",
                     "curriculum.patience=10", "curriculum.min_improvement=0.05", "trainer.steps_per_epoch=80",
                     "trainer.ckpt_every=40")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "optimizer=torch.optim.rmsprop.RMSprop" in proc.stdout
    assert "curriculum=my_curricula.Plateau levels=[8, 16, 32, 33]" in proc.stdout
    unlocks = read_jsonl(run_dir / "events.jsonl")
    unlocks = [e for e in unlocks if e["kind"] == "unlock"]
    assert len(unlocks) >= 2 and {e["reason"] for e in unlocks} == {"ready"}
    assert "  [UNLOCK] 8 -> 16 (loss=" in proc.stdout
    # each unlock came once the loss flattened: less than 5% better than 10 steps before
    rows = {r["step"]: r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == "train"}
    for event in unlocks:
        assert (rows[event["step"] - 10] - event["score"]) / rows[event["step"] - 10] < 0.05
    # the plug-in's running state rides in the checkpoint like a built-in's
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert state["curriculum"]["history"] == [{k: e[k] for k in state["curriculum"]["history"][0]} for e in unlocks]
    assert "seen" in state["curriculum"]


def test_the_plug_ins_the_second_study_runs_are_the_readmes_own_blocks():
    for name in README_FILES:  # experiments/extending holds them for +experiment=study_controls
        assert (ROOT / "experiments" / "extending" / name).read_text() == readme_block(f"# {name}"), name


def test_rmsprop_on_top_of_adamw_keys_fails_naming_the_key_to_drop(tmp_path):
    proc = run_train(tmp_path, tmp_path / "run", "optimizer._target_=torch.optim.RMSprop")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("torch.optim.RMSprop does not take optimizer.betas, optimizer.amsgrad, optimizer.fused. Fix: drop them "
            "with ~optimizer.betas ~optimizer.amsgrad ~optimizer.fused") in proc.stdout


def test_the_readmes_callback_runs_from_a_user_folder_as_shown(tmp_path, corpus_cache):
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "my_callbacks.py").write_text(readme_block("# my_callbacks.py"))
    readme = (ROOT / "README.md").read_text().replace("\\\n", " ")  # one line per command
    [command] = [line for line in readme.splitlines()
                 if line.startswith("PYTHONPATH=. python train.py +experiment=smoke +callbacks.")]
    overrides = command.split("python train.py ")[1].split()
    run_dir = tmp_path / "run"
    proc = run_train(folder, run_dir, *overrides, "trackers=local")  # the README's command, without W&B
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    unlocks = [e for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] == "unlock"]
    assert unlocks, "the run should have unlocked before it stopped"
    for event in unlocks:
        assert f"band {event['from_cutoff']} -> {event['to_cutoff']} open at step {event['step']}" in proc.stdout
    [finish] = [e for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] == "finish"]
    vals = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "val"]
    # it stopped at the first validation at or below 3.9, well before step 200
    assert finish["step"] == vals[-1]["step"] < 200 and vals[-1]["val_loss"] <= 3.9
    assert all(v["val_loss"] > 3.9 for v in vals[:-1])
    assert finish["stop_reason"] == f"val loss {vals[-1]['val_loss']:.3f} <= 3.9"
    assert f"stopped early: {finish['stop_reason']}" in proc.stdout
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == finish["step"]  # saved where it stopped
