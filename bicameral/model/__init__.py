"""The model: the bicameral language model and the transformer baseline it is compared with.

  config.py     ModelConfig: size, mixer and the kernels it runs
  spectral.py   the frequency path's maths: band masks, filters on the rfft grid, causal convolutions
  frequency.py  the frequency hemisphere (a band-limited causal long convolution)
  attention.py  the time hemisphere (windowed causal attention) and rotary embeddings
  mixers.py     the gate over both hemispheres, the baseline's full attention, the one-hemisphere ablations
  lm.py         blocks and the language model
"""

from bicameral.model.config import ModelConfig
from bicameral.model.lm import LanguageModel, ModelOutput

__all__ = ["LanguageModel", "ModelConfig", "ModelOutput"]
