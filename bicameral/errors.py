"""Bad input: each error's message names the problem and the fix, and is shown without a traceback."""

import contextlib
import os
import sys
import traceback


class BicameralError(Exception):
    """Base of every error a user can fix by changing the command, config, corpus or checkpoint."""


class CorpusError(BicameralError, ValueError):
    """A corpus, shard folder or tokenizer that cannot be used; the message names the path and the fix."""


class ConfigError(BicameralError, ValueError):
    """A config value that cannot work; the message names the key and the fix."""


@contextlib.contextmanager
def exit_on_bad_input():
    """For command-line tools: bad input ends in one `error: ...` line on stderr and exit code 2."""
    try:
        yield
    except BicameralError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


@contextlib.contextmanager
def hydra_setup_errors_in_one_line(task):
    """Around a `@hydra.main` entry point: errors in Hydra's own setup, before `task` runs, end in one line and
    exit code 2 instead of Hydra's traceback (a YAML syntax error in a config file, an output dir that cannot
    be made); Hydra's own compact errors (an unknown key or option) print as Hydra prints them, with its exit
    code 1. An error inside `task` is the task's to report."""
    import yaml
    from hydra.errors import CompactHydraException
    from omegaconf.errors import OmegaConfBaseException

    task_code = getattr(task, "__wrapped__", task).__code__
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises, rather than print a traceback and exit
    try:
        yield
    except CompactHydraException as err:
        print(err, file=sys.stderr)
        if isinstance(err.__cause__, OmegaConfBaseException):
            print(err.__cause__, file=sys.stderr)
        raise SystemExit(1) from None
    except BicameralError as err:  # a multirun job's: Hydra raises it after the sweep
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except yaml.YAMLError as err:
        print(f"error: YAML syntax error in {_yaml_error_text(err)}. Fix: correct the YAML there.", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as err:
        if any(frame.f_code is task_code for frame, _ in traceback.walk_tb(err.__traceback__)):
            raise
        print(f"error: Output path {err.filename} cannot be written ({err.strerror}). Fix: hydra.run.dir=<a writable "
              "folder> (hydra.sweep.dir for a multirun).", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error


def _yaml_error_text(err) -> str:
    """e.g. "<file>: while parsing a flow sequence (line 3, column 19), expected ',' or ']', but got ':' (line 4,
    column 10)": the file, and where the parser began the construct and where it failed."""

    def at(mark) -> str:
        return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""

    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is None:
        return f"a config file: {str(err).splitlines()[0]}"
    context = f"{err.context}{at(err.context_mark)}, " if getattr(err, "context", None) else ""
    return f"{mark.name}: {context}{err.problem}{at(err.problem_mark)}"
