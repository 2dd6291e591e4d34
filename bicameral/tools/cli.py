"""What the command-line tools share: argparse types (a value out of range fails at parse time, in one line
naming the flag: argparse prints `error: argument --tokens: ...` and exits 2), the --device flag, the name a
tool was started by, and the body of a console script."""

import argparse
import os
import runpy
import sys
from collections.abc import Callable

from bicameral.errors import exit_on_bad_input


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0 (a temperature: 0 is greedy)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    """A number > 0 (a margin, a loss)."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 must be more than 0")
    return value


def program(module: str) -> str:
    """The name a tool was started by, for its --help and errors: the console script (bicameral-sample), or
    `python -m bicameral.tools.sample` when run as a module."""
    started = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return started if started and not started.endswith(".py") else f"python -m {module}"


def device_argument(parser: argparse.ArgumentParser) -> None:
    """--device, the same in every tool: auto picks CUDA when present."""
    parser.add_argument("--device", default="auto", help="auto (CUDA when present, else the CPU), cpu, cuda or cuda:N")


def run_tool(main: Callable[[], object]) -> None:
    """A console script's body: bad input ends in one `error: ...` line and exit code 2; an int that `main`
    returns is the exit code."""
    with exit_on_bad_input():
        code = main()
    if isinstance(code, int):
        sys.exit(code)


def run_moved(old: str, new: str, script: str | None = None) -> None:
    """`python -m OLD` for a tool that moved to `new`: one line naming its new form, then the tool itself."""
    also = f" (installed: {script})" if script else ""
    print(f"python -m {old} moved to python -m {new}{also}; running that", file=sys.stderr)
    runpy.run_module(new, run_name="__main__", alter_sys=True)
