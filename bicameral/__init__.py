"""bicameral: a two-hemisphere language model and the frequency-band curricula that train it."""

__version__ = "0.1.0"
