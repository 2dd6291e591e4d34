"""The race's corpus: tens of MB of text as byte shards, prepared here once and carried to a GPU machine, which
may have no network (bicameral/tools/race.py, experiments/gpu_check.sh).

    python experiments/race_corpus.py --out race_corpus [--megabytes 40]

Shakespeare (the embedded corpus, 5 MB) alone is overfit by a GPU within a minute, so it is mixed with the
English-commented source of Python's standard library and of the installed torch package, all of it on any
machine that runs this project: prose and code, not a benchmark corpus; a race on it says which model learns
this text faster, no more. The sources are cut into 64 KB pieces and shuffled with a fixed seed, so the held-out
tail (the last 5%, bicameral-prepare's rule) mixes all three like the training split.
"""

import argparse
import random
import sysconfig
import tempfile
from pathlib import Path

import torch

from bicameral.data.corpus import shakespeare_text
from bicameral.data.prepare import prepare

PIECE_BYTES = 64 * 1024
SKIPPED_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}


def python_sources(root: Path, budget: int) -> list[str]:
    """The UTF-8 .py files under root, tests left out, in sorted order, up to `budget` bytes."""
    texts, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if SKIPPED_DIRS & set(path.relative_to(root).parts[:-1]):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        total += len(text.encode())
        if total >= budget:
            break
    return texts


def pieces(text: str) -> list[str]:
    """Cut at line ends near every PIECE_BYTES characters, so no piece splits a line."""
    out, start = [], 0
    while start < len(text):
        end = text.find("\n", start + PIECE_BYTES)
        end = len(text) if end < 0 else end + 1
        out.append(text[start:end])
        start = end
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the shard folder to write")
    parser.add_argument("--megabytes", type=float, default=40.0, help="about how much text in all")
    args = parser.parse_args()
    budget = int(args.megabytes * 1e6)
    shakespeare = shakespeare_text()
    stdlib = python_sources(Path(sysconfig.get_paths()["stdlib"]), (budget - len(shakespeare)) // 2)
    torch_source = python_sources(Path(torch.__file__).parent, budget - len(shakespeare) - sum(map(len, stdlib)))
    all_pieces = pieces(shakespeare) + [p for text in stdlib + torch_source for p in pieces(text)]
    random.Random(0).shuffle(all_pieces)
    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp) / "race_corpus.txt"
        text_file.write_text("".join(all_pieces), encoding="utf-8")
        print(f"{text_file.stat().st_size / 1e6:.1f} MB: Shakespeare {len(shakespeare.encode()) / 1e6:.1f} MB, "
              f"the standard library {sum(len(t.encode()) for t in stdlib) / 1e6:.1f} MB, torch's source "
              f"{sum(len(t.encode()) for t in torch_source) / 1e6:.1f} MB", flush=True)
        prepare([str(text_file)], args.out, tokenizer="bytes", overwrite=True)


if __name__ == "__main__":
    main()
