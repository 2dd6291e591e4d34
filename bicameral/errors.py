"""Bad input: each error's message names the problem and the fix, and is shown without a traceback."""


class BicameralError(Exception):
    """Base of every error a user can fix by changing the command, config, corpus or checkpoint."""
