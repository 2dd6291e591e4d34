"""Moved: `python -m bicameral.evaluate` is `python -m bicameral.tools.evaluate` now; this name still runs it."""

if __name__ == "__main__":
    from bicameral.tools.cli import run_moved

    run_moved("bicameral.evaluate", "bicameral.tools.evaluate", "bicameral-eval")
