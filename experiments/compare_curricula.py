"""Compare the runs of a sweep (or of one run dir): the tables, the paired differences, the figure.

    python train.py -m curriculum=achievement,fixed_threshold,none seed=0,1,2
    python experiments/compare_curricula.py multirun/2026-11-26/12-00-00 [--baseline V] [--title T] [--out DIR]

The same as `python -m bicameral.report` (bicameral/report/__main__.py), kept where earlier commands point.
"""

import sys

from bicameral.report.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
