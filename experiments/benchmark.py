"""Benchmark the bicameral model against the transformer baseline: see bicameral/bench.py.

    python experiments/benchmark.py --sizes small,base --seq-lens 1024,4096 --compile --out bench.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from any cwd without an install

from bicameral.tools.bench import main  # noqa: E402

if __name__ == "__main__":
    main()
