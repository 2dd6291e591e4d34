"""Reports on a sweep's runs, in one direction: runs -> summary and paired statistics -> tables and figure.

  names.py          run, variant and sweep names (W&B groups and tags, report labels)
  runs.py           the runs, read back from each job's files
  summary.py        each run's numbers and each variant's over its seeds
  stats.py          the statistics: paired and Welch t, Holm, power (scipy.stats)
  paired.py         paired differences and the confounds: LR area, tokens, identical runs
  tables.py         the report as text
  plot.py           the figure
  write.py          comparison.{md,json}, runs.csv and the figure
  sweep_callback.py the report at the end of every sweep (a Hydra callback)
  yoked.py          the yoked controls of a sweep, and one command that runs a sweep, its controls and the report

    python -m bicameral.report SWEEP_DIR [--baseline VARIANT] [--title T] [--label old=new] [--out DIR]
"""
