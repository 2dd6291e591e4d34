"""Moved: `python -m bicameral.gpu_report` is `python -m bicameral.tools.gpu_report` now; this name still runs it."""

if __name__ == "__main__":
    from bicameral.tools.cli import run_moved

    run_moved("bicameral.gpu_report", "bicameral.tools.gpu_report")
