"""Time to loss, side by side: nanoGPT's CPU recipe against the default bicameral run. See bicameral/time_to_loss.py.

    python experiments/time_to_loss.py [--quick] [--variant "key=value ..."] [--out DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from any cwd without an install

from bicameral.tools.time_to_loss import main  # noqa: E402

if __name__ == "__main__":
    main()
