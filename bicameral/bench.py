"""Moved: `python -m bicameral.bench` is `python -m bicameral.tools.bench` now; this name still runs it."""

if __name__ == "__main__":
    from bicameral.tools.cli import run_moved

    run_moved("bicameral.bench", "bicameral.tools.bench", "bicameral-bench")
