"""Token shards on disk: the three formats read as one stream per split, windows across shard boundaries, and every
bad shard folder refused in one line before any work."""

import numpy as np
import pytest
import torch

from bicameral.data import shard_format as fmt
from bicameral.data.batches import TrainBatches
from bicameral.data.corpus import CorpusError
from bicameral.data.datasets import TokenShards
from bicameral.data.shards import open_shards
from bicameral.data.streams import InMemoryTokens, ShardedTokens
from tests.shard_files import write_llmc, write_ours


def ramp(n, start=0, mod=251):
    return (np.arange(start, start + n) % mod).astype(np.int64)


def test_a_sharded_stream_reads_windows_across_shard_boundaries_as_one_sequence(tmp_path):
    whole = ramp(1000)
    pieces = [whole[:300], whole[300:310], whole[310:]]  # a 10-token shard: a window may span three
    stream = ShardedTokens([np.asarray(p, dtype=np.uint16) for p in pieces])
    assert len(stream) == 1000
    starts = torch.tensor([0, 290, 295, 305, 900])
    expected = InMemoryTokens(torch.from_numpy(whole)).windows(starts, 33)
    assert torch.equal(stream.windows(starts, 33), expected)


def test_our_shards_train_batches_draw_what_the_same_tokens_in_ram_draw(tmp_path):
    whole = ramp(5000)
    write_ours(tmp_path / "s", {"train": [whole[:2000], whole[2000:4500]], "val": [whole[4500:]]})
    shards = open_shards(tmp_path / "s")
    assert shards.format == "bicameral" and shards.vocab_size == 256 and len(shards.train) == 4500
    on_disk = TrainBatches(shards.train, 4, 64, seed=3)
    in_ram = TrainBatches(InMemoryTokens(torch.from_numpy(whole[:4500])), 4, 64, seed=3)
    for _ in range(5):
        assert all(torch.equal(a, b) for a, b in zip(on_disk.next(), in_ram.next()))


def test_nanogpt_bins_are_raw_uint16_and_need_their_vocab_size(tmp_path):
    ramp(3000, mod=50_000).astype(np.uint16).tofile(tmp_path / "train.bin")
    ramp(500, mod=50_000).astype(np.uint16).tofile(tmp_path / "val.bin")
    (tmp_path / "meta.pkl").write_bytes(b"never unpickled")
    with pytest.raises(CorpusError, match=r"nanogpt shards, which do not name their vocabulary\. Fix: data\.vocab"):
        TokenShards(64, str(tmp_path))
    data = TokenShards(64, str(tmp_path), vocab_size=50_304)
    assert data.format == "nanogpt" and data.vocab_size == 50_304 and data.tokenizer is None
    assert torch.equal(data.val.head(10), torch.arange(10))


def test_llmc_shards_are_read_after_their_header_in_both_versions(tmp_path):
    write_llmc(tmp_path / "fineweb_train_000001.bin", ramp(2000), version=1)
    write_llmc(tmp_path / "fineweb_train_000002.bin", ramp(1000, start=2000), version=1)
    write_llmc(tmp_path / "fineweb_val_000000.bin", ramp(400), version=2)
    data = TokenShards(64, str(tmp_path), vocab_size=256)
    assert data.format == "llmc" and len(data.train) == 3000 and len(data.val) == 400
    assert torch.equal(data.train.windows(torch.tensor([1990]), 20)[0], torch.from_numpy(ramp(20, start=1990)))
    assert data.val.shards[0].dtype == np.dtype("<u4")  # version 2: uint32 ids


def test_the_fingerprint_follows_the_content(tmp_path):
    write_ours(tmp_path / "a", {"train": [ramp(3000)], "val": [ramp(500)]})
    write_ours(tmp_path / "b", {"train": [ramp(3000, start=1)], "val": [ramp(500)]})
    def fingerprint(name):
        return TokenShards(64, str(tmp_path / name)).fingerprint()

    assert fingerprint("a") == fingerprint("a") != fingerprint("b")


# ---------------------------------------------------------------------------------------------
# bad input: one line each, naming the file and the fix


def bad_folders(tmp_path) -> dict:
    cases = {}
    cases["missing"] = (tmp_path / "nowhere", r"Shard folder .*nowhere does not exist\. Fix: set data\.path")
    (tmp_path / "empty").mkdir()
    cases["empty"] = (tmp_path / "empty", r"holds no token shards .* Fix: prepare one with bicameral-prepare")

    odd = tmp_path / "odd"
    odd.mkdir()
    ramp(3000).astype(np.uint16).tofile(odd / "train.bin")
    (odd / "val.bin").write_bytes(ramp(500).astype(np.uint16).tobytes() + b"\x01")
    cases["partial token"] = (odd, r"val\.bin holds 1001 bytes of tokens, not a whole number of uint16 tokens")

    magic = tmp_path / "magic"
    magic.mkdir()
    write_llmc(magic / "x_train_0.bin", ramp(3000))
    write_llmc(magic / "x_val_0.bin", ramp(500), magic=12345)
    cases["bad magic"] = (magic, r"x_val_0\.bin has header magic 12345, not llm\.c's 20240520")

    version = tmp_path / "version"
    version.mkdir()
    write_llmc(version / "x_train_0.bin", ramp(3000), version=7)
    write_llmc(version / "x_val_0.bin", ramp(500))
    cases["bad version"] = (version, r"x_train_0\.bin has header version 7; llm\.c's are 1 \(uint16\) and 2")

    short = tmp_path / "short"
    short.mkdir()
    write_llmc(short / "x_train_0.bin", ramp(3000), count=4000)
    write_llmc(short / "x_val_0.bin", ramp(500))
    cases["truncated llm.c"] = (short, r"holds 3000 tokens, its header says 4000: it is truncated")

    big_id = tmp_path / "big_id"
    write_ours(big_id, {"train": [np.concatenate([ramp(2000), [300], ramp(1000)])], "val": [ramp(500)]})
    cases["id over vocab"] = (big_id, r"holds token id 300 in its train split, but the vocabulary has 256 ids")

    mismatch = tmp_path / "mismatch"
    write_ours(mismatch, {"train": [ramp(3000)], "val": [ramp(500)]})
    (mismatch / "train_000000.bin").write_bytes(ramp(2000).astype(np.uint16).tobytes())
    cases["meta mismatch"] = (mismatch, r"meta\.json does not match its shards: train_000000\.bin holds 2000 tokens")

    lost = tmp_path / "lost"
    write_ours(lost, {"train": [ramp(3000), ramp(100)], "val": [ramp(500)]})
    (lost / "train_000001.bin").unlink()
    cases["shard missing"] = (lost, r"meta\.json does not match its shards: train_000001\.bin is missing")

    narrow = tmp_path / "narrow"
    write_ours(narrow, {"train": [ramp(3000)], "val": [ramp(500)]}, vocab_size=70_000, dtype="uint16")
    cases["dtype too narrow"] = (narrow, r"dtype uint16 cannot hold the ids of a 70000-token vocabulary\. "
                                         r"Fix: prepare again with --dtype uint32")

    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    (unreadable / fmt.META_FILE).write_text("{not json")
    cases["meta unreadable"] = (unreadable, r"meta\.json cannot be read \(JSONDecodeError")
    return cases


CASES = ["missing", "empty", "partial token", "bad magic", "bad version", "truncated llm.c", "id over vocab",
         "meta mismatch", "shard missing", "dtype too narrow", "meta unreadable"]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_shard_folder_fails_in_one_line_naming_the_fix(tmp_path, case):
    folder, message = bad_folders(tmp_path)[case]
    with pytest.raises(CorpusError, match=message) as err:
        TokenShards(64, str(folder), vocab_size=256 if case in ("partial token", "bad magic", "bad version",
                                                                "truncated llm.c") else None)
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)


def test_validation_windows_stay_inside_a_billion_token_split():
    """float32 would place the last of them past the end of the split; the windows are where they always were
    below 2**24 tokens."""
    from bicameral.data.streams import evenly_spaced

    high = 1_073_741_823 - 129
    assert int(torch.linspace(0, high, 64).long().max()) > high  # float32 rounds past the end
    assert int(evenly_spaced(high, 64).max()) == high
    assert torch.equal(evenly_spaced(241_234, 64), torch.linspace(0, 241_234, 64).long())
