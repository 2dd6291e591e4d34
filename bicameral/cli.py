"""argparse types shared by the command-line tools: a value out of range fails at parse time, in one
line naming the flag (argparse prints `error: argument --tokens: ...` and exits 2)."""

import argparse


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
