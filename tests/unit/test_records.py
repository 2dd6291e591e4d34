"""Records survive their own damage: a line that is not UTF-8 is cut on resume, named in the log, never a traceback."""

import json
import logging

from bicameral.records import cut_after


def test_a_line_of_invalid_bytes_is_cut_and_named(tmp_path, caplog):
    rows = [{"kind": "train", "step": s, "loss": 3.0} for s in (10, 20, 30)]
    lines = [json.dumps(r).encode() + b"\n" for r in rows]
    lines.insert(1, b'{"kind": "train", "step": 15, "loss": \xff\xfe}\n')  # damaged bytes between good rows
    (tmp_path / "metrics.jsonl").write_bytes(b"".join(lines))
    with caplog.at_level(logging.WARNING, logger="bicameral"):
        cut = cut_after(tmp_path, 20)
    kept = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in kept] == [10, 20]  # the damaged line and step 30 (after the checkpoint) go
    assert cut == {"metrics.jsonl": 2}
    assert any("line(s) 2 are not UTF-8 (damaged); cut" in r.getMessage() for r in caplog.records)
