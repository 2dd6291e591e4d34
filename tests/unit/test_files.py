"""One way to write a file whole: the old file or the new one, never half of either, and no temp file left."""

import pytest

from bicameral.files import torn_writes, write_text_atomically, written_atomically


@pytest.mark.parametrize("durable", [False, True])
def test_a_write_that_fails_leaves_the_old_file_and_no_temp(tmp_path, durable):
    path = tmp_path / "report.md"
    write_text_atomically(path, "old\n", durable)
    with pytest.raises(KeyboardInterrupt), written_atomically(path, durable) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt  # killed mid-write
    assert path.read_text() == "old\n" and torn_writes(path) == []
    write_text_atomically(path, "new\n", durable)
    assert path.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_the_temp_file_keeps_the_suffix_and_is_found_as_torn(tmp_path):
    path = tmp_path / "comparison.png"
    with written_atomically(path) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path  # savefig goes by the suffix
        assert torn_writes(path) == [tmp]  # what a killed writer would leave, and a resume removes
        tmp.write_bytes(b"png")
    assert torn_writes(path) == []
