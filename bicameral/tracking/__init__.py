"""Trackers report what the engine did: console lines, JSONL records in the run dir, W&B.

  tracker.py        the Tracker interface, the run's facts each one starts with, and the set of them
  console.py        the reference's log lines
  jsonl.py          metrics.jsonl and events.jsonl
  records.py        each step recorded once, whatever the stops and resumes
  wandb_tracker.py  Weights & Biases, offline by default
  format.py         how numbers read on the console

Config nodes name the trackers by these public paths (`bicameral.tracking.ConsoleTracker`).
"""

from bicameral.tracking.console import ConsoleTracker
from bicameral.tracking.jsonl import JsonlTracker, RecordError
from bicameral.tracking.tracker import RunInfo, Tracker, Trackers
from bicameral.tracking.wandb_tracker import WandbTracker

__all__ = ["ConsoleTracker", "JsonlTracker", "RecordError", "RunInfo", "Tracker", "Trackers", "WandbTracker"]
