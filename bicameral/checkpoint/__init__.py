"""Checkpoints: one file's format (format.py), a run's manager of them (manager.py), what a resume finds in
a run dir (resume.py) and checks before it continues (fingerprint.py), and converting older files
(upgrade.py; python -m bicameral.checkpoint upgrade OLD.pt NEW.pt --trust)."""

from bicameral.checkpoint.format import CheckpointError, load_checkpoint, save_checkpoint
from bicameral.checkpoint.manager import CheckpointManager

__all__ = ["CheckpointError", "CheckpointManager", "load_checkpoint", "save_checkpoint"]
