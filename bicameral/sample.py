"""Moved: `python -m bicameral.sample` is `python -m bicameral.tools.sample` now; this name still runs it."""

if __name__ == "__main__":
    from bicameral.tools.cli import run_moved

    run_moved("bicameral.sample", "bicameral.tools.sample", "bicameral-sample")
