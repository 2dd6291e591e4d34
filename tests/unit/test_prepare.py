"""bicameral-prepare: the shards hold exactly the input's text, whatever reads it (files, JSONL, Parquet) or however
many workers encode it; a BPE round-trips and accounts for every byte; a killed prepare leaves nothing that looks
whole; each bad input is one line before any work."""

import json

import numpy as np
import pytest

from bicameral.data import inputs
from bicameral.data import shard_format as fmt
from bicameral.data.prepare import main, prepare
from bicameral.data.shards import open_shards
from bicameral.data.tokenizer import HuggingFaceTokenizer, load_tokenizer
from bicameral.errors import CorpusError

DOCS = [f"Document {i}: " + " ".join(f"word{j % 97} café 名前" for j in range(i * 40, i * 40 + 300)) + "\n"
        for i in range(12)]


def quiet(*_):
    pass


@pytest.fixture
def folder(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    for i, doc in enumerate(DOCS):
        (texts / f"doc{i:02d}.txt").write_text(doc, encoding="utf-8")
    return texts


def split_text(meta: dict, out, tokenizer) -> dict[str, str]:
    shards = open_shards(out)
    return {split: tokenizer.decode(getattr(shards, split).head(len(getattr(shards, split))).tolist())
            for split in fmt.SPLITS}


def test_byte_shards_hold_the_documents_joined_and_meta_matches_them(folder, tmp_path):
    meta = prepare([str(folder)], tmp_path / "out", val_fraction=0.2, shard_tokens=10_000, log=quiet)
    text = split_text(meta, tmp_path / "out", load_tokenizer(meta["tokenizer"], tmp_path / "out"))
    joined = fmt.DOCUMENT_SEPARATOR.join(DOCS)
    # a split starts without a separator: where the cut falls between documents, theirs is not in either
    assert text["train"] + text["val"] == joined or text["train"] + fmt.DOCUMENT_SEPARATOR + text["val"] == joined
    assert 0.2 <= len(text["val"].encode()) / len(joined.encode()) < 0.2 + 1 / len(DOCS)  # pieces: whole documents
    train = meta["splits"]["train"]
    assert len(train["shards"]) > 1 and all(s["tokens"] <= 10_000 for s in train["shards"])  # cut into shards
    assert train["tokens"] == train["bytes"] == sum(s["tokens"] for s in train["shards"])
    assert meta["dtype"] == "uint8" and meta["vocab_size"] == 256 and not (tmp_path / "out" / "tokenizer.json").exists()


def test_a_bpe_round_trips_and_its_token_bytes_count_every_byte(folder, tmp_path):
    meta = prepare([str(folder)], tmp_path / "out", tokenizer="bpe", vocab_size=400, val_fraction=0.2, log=quiet)
    out = tmp_path / "out"
    tokenizer = load_tokenizer(meta["tokenizer"], out)
    # as many ids as asked, or as many as the text's merges allow
    assert isinstance(tokenizer, HuggingFaceTokenizer) and 300 < meta["vocab_size"] == tokenizer.vocab_size <= 400
    assert meta["dtype"] == "uint16"
    text = split_text(meta, out, tokenizer)
    assert fmt.DOCUMENT_SEPARATOR.join(DOCS).startswith(text["train"])
    shards = open_shards(out)
    ids = shards.train.head(len(shards.train)).numpy()
    assert meta["splits"]["train"]["tokens"] < meta["splits"]["train"]["bytes"]  # merges happened
    assert tokenizer.token_bytes()[ids].sum() == meta["splits"]["train"]["bytes"]


def test_jsonl_and_parquet_give_the_tokens_the_same_text_as_files_gives(folder, tmp_path):
    pyarrow = pytest.importorskip("pyarrow")  # installed with the [data] extra
    from pyarrow import parquet

    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"id": i, "text": d}) + "\n" for i, d in enumerate(DOCS)))
    parquet.write_table(pyarrow.table({"body": DOCS}), tmp_path / "docs.parquet")
    files = prepare([str(folder)], tmp_path / "files", log=quiet)
    jsonl = prepare([str(tmp_path / "docs.jsonl")], tmp_path / "jsonl", log=quiet)
    table = prepare([str(tmp_path / "docs.parquet")], tmp_path / "parquet", text_field="body", log=quiet)
    assert files["content_sha1"] == jsonl["content_sha1"] == table["content_sha1"]


def test_workers_change_nothing_but_the_speed(folder, tmp_path):
    one = prepare([str(folder)], tmp_path / "one", tokenizer="bpe", vocab_size=300, log=quiet)
    two = prepare([str(folder)], tmp_path / "two", tokenizer=str(tmp_path / "one" / "tokenizer.json"), workers=2,
                  log=quiet)
    assert one["content_sha1"] == two["content_sha1"] and one["splits"] == two["splits"]
    assert one["tokenizer"] == two["tokenizer"]  # a local tokenizer.json, copied beside the shards


def test_a_killed_prepare_leaves_no_meta_and_no_shard_under_its_name(folder, tmp_path, monkeypatch):
    from bicameral.data import prepare as module

    calls = []

    def dies_on_the_third_chunk(tokenizer, texts):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return np.concatenate([tokenizer.encode(t) for t in texts]).astype(np.int64)

    monkeypatch.setattr(module, "CHUNK_CHARS", 2_000)
    monkeypatch.setattr(module, "encode_all", dies_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        prepare([str(folder)], tmp_path / "out", shard_tokens=3_000, log=quiet)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert fmt.META_FILE not in names and not [n for n in names if n.startswith(".")]  # no temp files either
    for name in names:  # what was renamed is whole: a full shard
        assert (tmp_path / "out" / name).stat().st_size == 3_000
    with pytest.raises(CorpusError, match="no token shards|meta.json"):
        open_shards(tmp_path / "out")


def bad_inputs(tmp_path, folder) -> dict:
    (tmp_path / "empty").mkdir()
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1") * 10)
    (tmp_path / "blank.txt").write_text("")
    (tmp_path / "rows.jsonl").write_text(json.dumps({"body": "x"}) + "\n")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "held").mkdir()
    (tmp_path / "held" / fmt.META_FILE).write_text("{}")
    return {
        "missing": ([str(tmp_path / "nowhere")], {}, r"Input .*nowhere does not exist\. Fix:"),
        "no files": ([str(tmp_path / "empty")], {}, r"holds no text .* Fix: point at files"),
        "binary": ([str(tmp_path / "binary.txt")], {}, r"binary\.txt looks binary \(NUL bytes\)\. Fix: pass UTF-8"),
        "not utf-8": ([str(tmp_path / "latin1.txt")], {}, r"latin1\.txt is not valid UTF-8 \(byte 3\)\. Fix: convert"),
        "empty": ([str(tmp_path / "blank.txt")], {}, r"holds no text\. Fix: pass non-empty files"),
        "no field": ([str(tmp_path / "rows.jsonl")], {}, r"no field 'text' \(its fields: body\)\. Fix: --text-field"),
        "bad json": ([str(tmp_path / "broken.json")], {}, r"broken\.json cannot be read as json .*Fix:"),
        "bpe size": ([str(folder)], {"tokenizer": "bpe"}, r"--tokenizer bpe needs its size\. Fix: add --vocab-size"),
        "bpe small": ([str(folder)], {"tokenizer": "bpe", "vocab_size": 100}, r"--vocab-size 100 leaves no room"),
        "bad tokenizer": ([str(folder)], {"tokenizer": str(tmp_path / "blank.txt")},
                          r"Tokenizer file .*blank\.txt does not load .*Fix: point at a Hugging Face tokenizer\.json"),
        "narrow dtype": ([str(folder)], {"tokenizer": "bpe", "vocab_size": 300, "dtype": "uint8"},
                         r"--dtype uint8 cannot hold the ids of a 300-token vocabulary\. Fix: --dtype uint16"),
        "out holds a corpus": ([str(folder)], {"out": tmp_path / "held"}, r"already holds a corpus .* Fix: --overwr"),
        "val fraction": ([str(folder)], {"val_fraction": 1.5}, r"--val-fraction 1\.5 must be in \(0, 1\)"),
    }


CASES = ["missing", "no files", "binary", "not utf-8", "empty", "no field", "bad json", "bpe size", "bpe small",
         "bad tokenizer", "narrow dtype", "out holds a corpus", "val fraction"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_before_any_shard_is_written(tmp_path, folder, case):
    given, options, message = bad_inputs(tmp_path, folder)[case]
    out = options.pop("out", tmp_path / "out")
    with pytest.raises(CorpusError, match=message) as err:
        prepare(given, out, log=quiet, **options)
    assert "\n" not in str(err.value)
    assert not list(out.glob("*.bin")) if out.exists() else True


def test_the_command_line_prints_its_summary_and_errors_in_one_line(folder, tmp_path, capsys, monkeypatch):
    from bicameral.data.prepare import cli

    main([str(folder), "--out", str(tmp_path / "out"), "--val-fraction", "0.2"])
    assert " train / " in capsys.readouterr().out and (tmp_path / "out" / fmt.META_FILE).is_file()
    monkeypatch.setattr("sys.argv", ["bicameral-prepare", str(folder), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_code:
        cli()
    err = capsys.readouterr().err.strip()
    assert exit_code.value.code == 2 and err.startswith("error: ") and err.endswith("or another --out.")
    assert "\n" not in err


def test_text_is_cut_into_line_aligned_pieces(monkeypatch):
    monkeypatch.setattr(inputs, "PIECE_BYTES", 10)
    text = "aaaa\nbbbb\ncccccccccccccc\ndd"
    cut = list(inputs.pieces(text))
    assert "".join(cut) == text and cut == ["aaaa\nbbbb\n", "cccccccccccccc\n", "dd"]


@pytest.mark.parametrize("read_bytes", [1, 2, 3, 5, 7])
def test_a_block_with_no_newline_never_splits_a_character(tmp_path, monkeypatch, read_bytes):
    """A file read in blocks that end mid-character (1 to 4 bytes each here) still decodes, whole."""
    monkeypatch.setattr(inputs, "READ_BYTES", read_bytes)
    text = "aé€😀" * 5  # 1-, 2-, 3- and 4-byte characters, and no newline anywhere
    path = tmp_path / "one_line.txt"
    path.write_text(text, encoding="utf-8")
    assert "".join(inputs.text_documents(path)) == text


def test_invalid_utf8_is_still_named_with_its_byte(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"is not valid UTF-8 \(byte 3\)"):
        list(inputs.text_documents(path))
