"""Held-out evaluation of a checkpoint, in nats and bits per byte:

  - shakespeare-val: the held-out tail of the training corpus (the run's own val split);
  - python-docs: English prose the model never trained on, the Python reference documentation that
    ships inside every Python (pydoc_data.topics), so a curriculum that only fits the training text
    shows it;
  - any UTF-8 file or folder of your own, with --text PATH (repeatable), named by the path.

    python -m bicameral.evaluate CHECKPOINT [--text PATH ...] [--batches 16] [--json out.json]
"""

import argparse
import json
import math

import numpy as np
import torch
from omegaconf import OmegaConf

from bicameral.build import build_data
from bicameral.checkpoint import load_checkpoint
from bicameral.corpus import CorpusError, text_file_tokens
from bicameral.data import val_batches
from bicameral.errors import exit_on_bad_input
from bicameral.model import LanguageModel
from bicameral.sample import load_model
from bicameral.tokenizer import ByteTokenizer


def python_docs_tokens() -> np.ndarray:
    """The Python reference's topics (about 0.5 MB of English prose and grammar), in a fixed order."""
    from pydoc_data.topics import topics

    return ByteTokenizer().encode("\n\n".join(topics[key] for key in sorted(topics)))


@torch.no_grad()
def loss_per_byte(model: LanguageModel, tokens: torch.Tensor, batch_size: int, n_batches: int) -> float:
    """Mean next-byte cross-entropy (nats) over fixed, evenly spaced windows of `tokens`."""
    device = next(model.parameters()).device
    losses = [model(x.to(device), y.to(device)).loss.item()
              for x, y in val_batches(tokens, batch_size, model.cfg.seq_len, n_batches)]
    return sum(losses) / len(losses)


def user_text_tokens(path: str, seq_len: int) -> torch.Tensor:
    """A --text file or folder as tokens, long enough for at least one window of the model's context."""
    tokens = text_file_tokens(path, key="--text")
    if len(tokens) < seq_len + 1:
        raise CorpusError(f"--text {path} has {len(tokens)} tokens: too short for one window of seq_len={seq_len} "
                          f"(needs {seq_len + 1}). Fix: pass a longer text.")
    return torch.from_numpy(tokens)


def evaluate(checkpoint: str, batch_size: int = 8, n_batches: int = 16, device: str = "cpu",
             texts: list[str] = ()) -> dict:
    """{corpus: {"nats_per_byte", "bits_per_byte"}} for the held-out split, the unseen corpus and
    every path in `texts`."""
    state = load_checkpoint(checkpoint)
    model = load_model(state, torch.device(device))
    data_cfg = OmegaConf.create(state["config"]["data"])
    corpora = {
        "shakespeare-val": build_data(data_cfg, model.cfg.seq_len).val,
        "python-docs": torch.from_numpy(python_docs_tokens()),
        **{path: user_text_tokens(path, model.cfg.seq_len) for path in texts},
    }
    results = {}
    for name, tokens in corpora.items():
        nats = loss_per_byte(model, tokens, batch_size, n_batches)
        results[name] = {"nats_per_byte": nats, "bits_per_byte": nats / math.log(2)}
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--text", action="append", default=[], metavar="PATH",
                        help="also score this UTF-8 file or folder of text files (repeatable)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    results = evaluate(args.checkpoint, args.batch_size, args.batches, args.device, args.text)
    width = max(16, *(len(name) for name in results))
    for name, r in results.items():
        print(f"{name:<{width}} {r['nats_per_byte']:.3f} nats/byte  {r['bits_per_byte']:.3f} bits/byte")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    with exit_on_bad_input():  # an unreadable or unsafe checkpoint: one line, no traceback
        main()
