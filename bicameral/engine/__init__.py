"""The engine: building a run from its config and training it.

  run.py          build_run(cfg) -> Run, fit(run), train(cfg, run_dir)
  build.py        config nodes -> data, model, curriculum, optimizer, schedule, checked by name
  trainer.py      the training loop
  events.py       what the loop tells trackers and callbacks, as typed events
  spike.py        the loss spike after an unlock, measured
  stateful.py     the state protocol every checkpointed part follows
  rng.py          every random generator's state as tensors
  preemption.py   stop signals: finish the step, save, exit
  distributed.py  data parallel training under torchrun
  device.py       the device a setting names
  lock.py         one writer per run dir
"""
