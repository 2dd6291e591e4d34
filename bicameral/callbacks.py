"""Callbacks: user code the engine calls at named points of a run, without patching it.

A callback subclasses `Callback` and overrides the hooks it needs; each gets the `Trainer`, so it
may read anything (model, curriculum, step, val losses) and may end the run early with
`trainer.request_stop(reason)`. Trackers only report; callbacks may act.

Callbacks come from the `callbacks:` config node, one `_target_` node per name:

    python train.py +callbacks.leak._target_=my_callbacks.KernelLeak

or are passed in code: `bicameral.engine.run.train(cfg, run_dir, callbacks=[KernelLeak()])`. A callback
with `state_dict`/`load_state_dict` has its state saved in every checkpoint, under its name.
"""

from bicameral.curriculum import UnlockEvent
from bicameral.engine.events import ValResult


class Callback:
    """Every hook the engine calls; each does nothing unless overridden."""

    def on_fit_start(self, trainer) -> None:
        """Before the first step of this process (after a resume has restored the state)."""

    def on_step_end(self, trainer) -> None:
        """After each optimizer step; `trainer.step` is the step just taken."""

    def on_unlock_start(self, trainer, event: UnlockEvent) -> None:
        """The curriculum decided to unlock; the model still has the old band (`event.from_cutoff`)."""

    def on_unlock_end(self, trainer, event: UnlockEvent) -> None:
        """The band is open (`event.to_cutoff`) and the LR cycle has restarted, if it restarts."""

    def on_validation_start(self, trainer) -> None: ...

    def on_validation_end(self, trainer, result: ValResult) -> None: ...

    def on_save(self, trainer, path) -> None:
        """A checkpoint was written to `path` (rank 0 only)."""

    def on_fit_end(self, trainer, summary: dict) -> None:
        """Training reached its end, its `stop_at` or a requested stop; `summary` is the run's."""


class Callbacks(Callback):
    """Calls each callback in order. Their resume state is each stateful callback's, by name."""

    def __init__(self, callbacks: dict[str, Callback] | None = None):
        self.callbacks = dict(callbacks or {})

    def _each(self, hook: str, *args) -> None:
        for callback in self.callbacks.values():
            getattr(callback, hook)(*args)

    def on_fit_start(self, trainer) -> None:
        self._each("on_fit_start", trainer)

    def on_step_end(self, trainer) -> None:
        self._each("on_step_end", trainer)

    def on_unlock_start(self, trainer, event: UnlockEvent) -> None:
        self._each("on_unlock_start", trainer, event)

    def on_unlock_end(self, trainer, event: UnlockEvent) -> None:
        self._each("on_unlock_end", trainer, event)

    def on_validation_start(self, trainer) -> None:
        self._each("on_validation_start", trainer)

    def on_validation_end(self, trainer, result: ValResult) -> None:
        self._each("on_validation_end", trainer, result)

    def on_save(self, trainer, path) -> None:
        self._each("on_save", trainer, path)

    def on_fit_end(self, trainer, summary: dict) -> None:
        self._each("on_fit_end", trainer, summary)

    def _stateful(self) -> dict:
        return {name: c for name, c in self.callbacks.items() if hasattr(c, "state_dict")}

    def state_dict(self) -> dict:
        return {name: c.state_dict() for name, c in self._stateful().items()}

    def load_state_dict(self, state: dict) -> None:
        for name, callback in self._stateful().items():
            if name in state:  # a callback added on resume starts fresh
                callback.load_state_dict(state[name])
