"""Records and checkpoints survive their own damage: a record line that is not UTF-8 is cut on resume and named;
component state is made plain at the save, or refused there."""

import json
import logging

import numpy as np
import pytest
import torch

from bicameral.checkpoint.format import CheckpointError
from bicameral.checkpoint.manager import CheckpointManager
from bicameral.tracking.records import cut_after
from tests.conftest import read_jsonl


def test_a_line_of_invalid_bytes_is_cut_and_named(tmp_path, caplog):
    rows = [{"kind": "train", "step": s, "loss": 3.0} for s in (10, 20, 30)]
    lines = [json.dumps(r).encode() + b"\n" for r in rows]
    lines.insert(1, b'{"kind": "train", "step": 15, "loss": \xff\xfe}\n')  # damaged bytes between good rows
    (tmp_path / "metrics.jsonl").write_bytes(b"".join(lines))
    with caplog.at_level(logging.WARNING, logger="bicameral"):
        cut = cut_after(tmp_path, 20)
    kept = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in kept] == [10, 20]  # the damaged line and step 30 (after the checkpoint) go
    assert cut == {"metrics.jsonl": 2}
    assert any("line(s) 2 are not UTF-8 (damaged); cut" in r.getMessage() for r in caplog.records)


def test_component_state_is_made_plain_at_the_save_or_refused_naming_the_key(tmp_path):
    """A plug-in's numpy scalar made every checkpoint unloadable; now it is a float, and a type a safe load
    cannot read fails at the first save, naming the component and the key."""

    class Component:
        def __init__(self, state):
            self.state = state

        def state_dict(self):
            return self.state

        def load_state_dict(self, state):
            self.state = state

    checkpointer = CheckpointManager(tmp_path / "checkpoint.pt")
    checkpointer.track(curriculum=Component({"best": np.float64(2.5), "seen": [np.int64(3)], "w": np.ones(2)}))
    checkpointer.save(checkpointer.state_dict(step=7))
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # what every resume does
    assert type(state["curriculum"]["best"]) is float and state["curriculum"]["seen"] == [3]
    assert state["curriculum"]["w"].tolist() == [1.0, 1.0]

    checkpointer.track(curriculum=Component({"bars": {"next": {1, 2}}}))
    with pytest.raises(CheckpointError, match=r"curriculum\.bars\.next is a builtins\.set, which a safe load"):
        checkpointer.state_dict(step=8)
