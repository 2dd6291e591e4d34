"""Generate text from a checkpoint: bicameral-sample CHECKPOINT --prompt "ROMEO:" [options]
(python -m bicameral.tools.sample in a checkout)."""

import argparse
from pathlib import Path

import torch

from bicameral.checkpoint.format import CheckpointError, load_checkpoint
from bicameral.data.corpus import CorpusError
from bicameral.data.tokenizer import load_tokenizer
from bicameral.engine.device import pick_device
from bicameral.model.config import ModelConfig
from bicameral.model.lm import LanguageModel
from bicameral.tools.cli import device_argument, non_negative_float, positive_int, program, run_tool


def load_model(state: dict, device: torch.device) -> LanguageModel:
    """A loaded checkpoint's model, at the cutoff it was trained to (the band mask is part of its state)."""
    model = LanguageModel(ModelConfig(**state["config"]["model"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def checkpoint_tokenizer(state: dict, checkpoint: str | Path):
    """The tokenizer that decodes a checkpoint's ids: bytes, or the tokenizer.json its run dir keeps, checked
    against the hash the checkpoint records. Only a bare file name beside the checkpoint is ever read."""
    entry = state.get("tokenizer", {"kind": "bytes"})  # checkpoints from before tokenizers were all bytes
    if entry is None:
        raise CorpusError(f"{checkpoint} was trained on shards that name no tokenizer, so its ids cannot be decoded. "
                          "Fix: train with data.tokenizer=PATH/tokenizer.json.")
    name = entry.get("file")
    if name is not None and (not isinstance(name, str) or Path(name).name != name):
        raise CheckpointError(f"{checkpoint} names tokenizer file {name!r}, not a file beside it. "
                              "Fix: use a checkpoint written by bicameral-train.")
    return load_tokenizer(entry, Path(checkpoint).parent)


@torch.no_grad()
def generate(model: LanguageModel, prompt: torch.Tensor, new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample `new_tokens` after prompt (B, T0); the context is the last seq_len tokens."""
    idx = prompt
    for _ in range(new_tokens):
        logits = model(idx[:, -model.cfg.seq_len:]).logits[:, -1].float()  # (B, vocab)
        if temperature == 0:
            next_id = logits.argmax(dim=-1, keepdim=True)
        else:
            logits = logits / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = logits.softmax(dim=-1)
            next_id = torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)
        idx = torch.cat([idx, next_id], dim=1)
    return idx


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(prog=program("bicameral.tools.sample"), description=__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("--prompt", default="\n")
    parser.add_argument("--tokens", type=positive_int, default=300,
                        help="tokens to generate (bytes in a byte-level run)")
    parser.add_argument("--temperature", type=non_negative_float, default=0.8, help="0 = greedy")
    parser.add_argument("--top-k", type=positive_int, default=40)
    parser.add_argument("--samples", type=positive_int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    device_argument(parser)
    args = parser.parse_args(argv)

    device = pick_device(args.device, key="--device")
    state = load_checkpoint(args.checkpoint)
    model = load_model(state, device)
    tokenizer = checkpoint_tokenizer(state, args.checkpoint)
    prompt = torch.tensor(tokenizer.encode(args.prompt), dtype=torch.long, device=device).repeat(args.samples, 1)
    generator = torch.Generator().manual_seed(args.seed)
    out = generate(model, prompt, args.tokens, args.temperature, args.top_k, generator)
    texts = [tokenizer.decode(row.tolist()) for row in out]
    for i, text in enumerate(texts):
        print(f"--- sample {i} (cutoff {model.cutoff}, temperature {args.temperature}, top-k {args.top_k})")
        print(text)
    return texts


def cli() -> None:
    run_tool(main)  # an unreadable or unsafe checkpoint: one line, no traceback


if __name__ == "__main__":
    cli()
