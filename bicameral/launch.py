"""Moved: `python -m bicameral.launch` is `python -m bicameral.tools.launch` now; this name still runs it."""

if __name__ == "__main__":
    from bicameral.tools.cli import run_moved

    run_moved("bicameral.launch", "bicameral.tools.launch")
