"""The time-to-loss benchmark: its quick mode reports every field, and its arithmetic is right."""

import json

import pytest
import torch

from bicameral.tools.time_to_loss import compare, first_reach, main, windowed_loss


class Counting(torch.nn.Module):
    """A stand-in model that records which targets it was scored on."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, y):
        self.seen.append(y.flatten())
        out = type("Out", (), {})()
        out.loss, out.freq_share = y.float().mean(), torch.tensor(0.5)
        return out


def test_every_context_scores_the_same_held_out_tokens():
    tokens = torch.arange(257)
    scored = {}
    for seq_len in (64, 256):
        model = Counting()
        loss, share = windowed_loss(model, tokens, seq_len, batch_size=3)
        scored[seq_len] = torch.cat(model.seen)
        assert share == 0.5 and abs(loss - tokens[1:].float().mean().item()) < 1e-4
    assert torch.equal(scored[64], scored[256]) and torch.equal(scored[64], tokens[1:])


def test_ratio_is_the_first_crossing_over_the_peer_time():
    peer = {"final_val_loss": 2.0, "seconds": 100.0}
    curve = [{"seconds": s, "val_loss": v} for s, v in ((10.0, 3.0), (40.0, 1.99), (60.0, 1.5))]
    assert first_reach(curve, 2.0) == 40.0
    assert compare(peer, {"curve": curve})["wall_clock_ratio"] == 0.4
    assert compare(peer, {"curve": curve[:1]})["wall_clock_ratio"] is None


def test_quick_mode_writes_json_and_plot(tmp_path, corpus_cache):
    report = main(["--quick", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "time_to_loss.json").read_text()) == json.loads(json.dumps(report))
    assert (tmp_path / "time_to_loss.png").stat().st_size > 10_000
    peer, (ours,) = report["peer"], report["ours"]
    assert peer["seq_len"] == 64 and peer["tokens_per_step"] == 12 * 64 and peer["steps"] == 20
    assert ours["seq_len"] == 128 and ours["steps"] == 10
    for run in (peer, ours):
        seconds = [p["seconds"] for p in run["curve"]]
        assert seconds == sorted(seconds) and seconds[0] > 0 and run["seconds"] == seconds[-1]
        assert all(0 < p["val_loss"] < 6 for p in run["curve"])
        assert run["final_val_loss"] == run["curve"][-1]["val_loss"]
    assert ours["target_val_loss"] == peer["final_val_loss"]
    reached = first_reach(ours["curve"], peer["final_val_loss"])
    assert ours["wall_clock_ratio"] == (reached / peer["seconds"] if reached is not None else None)


@pytest.mark.slow  # a minute or more on 2 cores; `pytest -m slow`
def test_until_target_stops_each_run_at_its_first_validation_at_the_peers_loss(tmp_path, corpus_cache):
    report = main(["--quick", "--until-target", "--no-default", "--variant", "trainer.steps_per_epoch=60",
                   "--out", str(tmp_path)])
    target, (ours,) = report["peer"]["final_val_loss"], report["ours"]
    losses = [p["val_loss"] for p in ours["curve"]]
    assert report["until_target"] and losses[-1] <= target and all(v > target for v in losses[:-1])
    assert ours["steps"] == ours["curve"][-1]["step"] < 60  # stopped there, not at the run's end
    assert ours["wall_clock_ratio"] == ours["seconds"] / report["peer"]["seconds"]
