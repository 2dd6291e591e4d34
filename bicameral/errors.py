"""Bad input: each error's message names the problem and the fix, and is shown without a traceback."""

import contextlib
import sys


class BicameralError(Exception):
    """Base of every error a user can fix by changing the command, config, corpus or checkpoint."""


@contextlib.contextmanager
def exit_on_bad_input():
    """For command-line tools: bad input ends in one `error: ...` line on stderr and exit code 2."""
    try:
        yield
    except BicameralError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
