"""The shared table source: delimiters, headers, encodings, stray quotes, JSON lines, errors."""

import logging
from pathlib import Path

import pytest

from shared.data.table import read_table
from shared.errors import UserError


def _file(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "delimiter"),
    [
        ("t.tsv", "id\tnote\tamount\n1\ta, b\t2.5\n2\tc\t3.0\n", "\t"),
        ("t.txt", "id,note,amount\n1,a; b,2.5\n2,c,3.0\n", ","),
        ("t.csv", "id;note;amount\n1;a, b;2.5\n2;c;3.0\n", ";"),
    ],
)
def test_delimiter_is_sniffed_whatever_the_file_name(
    tmp_path: Path, name: str, content: str, delimiter: str
) -> None:
    frame, report = read_table(f"csv:{_file(tmp_path, name, content)}")
    assert list(frame.columns) == ["id", "note", "amount"]
    assert frame["note"].tolist() == ["a, b" if delimiter != "," else "a; b", "c"]
    assert frame["amount"].tolist() == [2.5, 3.0]
    assert report["delimiter"] == delimiter and report["delimiter_sniffed"] is True
    assert report["rows"] == report["data_lines"] == 2


def test_forced_delimiter_wins_over_sniffing(tmp_path: Path) -> None:
    path = _file(tmp_path, "t.csv", "a;b,c\n1;2,3\n4;5,6\n")
    frame, report = read_table(path, delimiter="semicolon")
    assert list(frame.columns) == ["a", "b,c"] and report["delimiter_sniffed"] is False
    with pytest.raises(UserError, match="data.delimiter must be one character"):
        read_table(path, delimiter="::")


def test_no_header_with_column_names(tmp_path: Path) -> None:
    path = _file(tmp_path, "t.tsv", "1\tx\t0\n2\ty\t1\n3\tz\t0\n")
    frame, report = read_table(path, header=False, columns=["id", "name", "label"])
    assert list(frame.columns) == ["id", "name", "label"] and len(frame) == 3
    assert frame["id"].tolist() == [1, 2, 3] and report["header"] is False
    with pytest.raises(UserError, match=r"has 3 column\(s\) .* names 2: id, name"):
        read_table(path, header=False, columns=["id", "name"])
    frame, report = read_table(path, header=False)
    assert list(frame.columns) == ["column_1", "column_2", "column_3"] and len(frame) == 3
    assert any("no header row" in note for note in report["notes"])


@pytest.mark.parametrize(
    ("encoding", "text", "expected"),
    [
        ("cp1252", "name,price\nJosé,5€\nZoë,3€\n", "cp1252"),
        ("latin-1", "name,price\nJosé,5\x81\nZoë,3\n", "latin-1"),  # 0x81: undefined in cp1252
    ],
)
def test_single_byte_encodings_are_detected(
    tmp_path: Path, encoding: str, text: str, expected: str, caplog
) -> None:
    path = _file(tmp_path, "t.csv", text.encode(encoding))
    with caplog.at_level(logging.WARNING, logger="shared.data.table"):
        frame, report = read_table(path)
    assert frame["name"].tolist() == ["José", "Zoë"]
    assert report["encoding"] == expected and report["undecodable_bytes"] == 0
    assert f"decoded as {expected}" in caplog.text


def test_utf8_with_bom_and_utf16_read_cleanly(tmp_path: Path) -> None:
    frame, report = read_table(_file(tmp_path, "a.csv", "\ufeffname,n\nÅsa,1\n".encode()))
    assert list(frame.columns) == ["name", "n"] and report["encoding"] == "utf-8-sig"
    frame, report = read_table(_file(tmp_path, "b.csv", "name,n\nÅsa,1\n".encode("utf-16")))
    assert frame["name"].tolist() == ["Åsa"] and report["encoding"] == "utf-16"


def test_undecodable_bytes_are_replaced_counted_and_located(tmp_path: Path) -> None:
    raw = "name,city\nJosé,Zürich\nRené,Köln\nBad,".encode() + b"K\xff\xfeln\nOk,Bern\n"
    frame, report = read_table(_file(tmp_path, "t.csv", raw))
    assert len(frame) == 4 and frame["city"].tolist()[2] == "K\ufffd\ufffdln"
    assert frame["name"].tolist()[0] == "José"  # still UTF-8, not mis-decoded as cp1252
    assert report["encoding"] == "utf-8" and report["undecodable_bytes"] == 2
    assert any("2 byte(s) are not valid utf-8" in n and "line(s) 4" in n for n in report["notes"])
    frame, report = read_table(_file(tmp_path, "u.csv", raw), encoding="ascii")
    assert report["encoding"] == "ascii" and report["undecodable_bytes"] == 2 + 8
    assert report["encoding_forced"] is True


@pytest.mark.parametrize("tail", ["5,last,1\n", '5,"last",1\n', '5,another "one,1\n'])
def test_stray_quote_does_not_merge_lines(tmp_path: Path, tail: str) -> None:
    text = 'id,text,y\n1,"5 inch screen,0\n2,fine,1\n3,"quoted, with comma",0\n4,"plain",1\n' + tail
    frame, report = read_table(_file(tmp_path, "t.csv", text))
    assert frame["id"].tolist() == [1, 2, 3, 4, 5]
    assert frame["y"].tolist() == [0, 1, 0, 1, 1]
    assert frame["text"].tolist()[:4] == ['"5 inch screen', "fine", "quoted, with comma", "plain"]
    assert report["stray_quote_lines"] == [2]
    assert report["quoting"] == "off on lines with a stray quote"
    assert any("stray quote" in note and "line(s) 2" in note for note in report["notes"])


def test_quoted_fields_spanning_lines_are_kept_and_reported(tmp_path: Path) -> None:
    text = 'id,text\n1,"first line\nsecond line"\n2,plain\n'
    frame, report = read_table(_file(tmp_path, "t.csv", text))
    assert frame["text"].tolist() == ["first line\nsecond line", "plain"]
    assert report["quoting"] == "standard" and report["data_lines"] == 3 and report["rows"] == 2
    assert any("3 data lines but 2 rows" in note for note in report["notes"])


def test_jsonl_objects_with_bad_lines_reported(tmp_path: Path) -> None:
    text = '{"a": 1, "b": "x"}\nnot json\n\n{"a": 2, "c": true}\n[1, 2]\n'
    frame, report = read_table(f"jsonl:{_file(tmp_path, 'rows.txt', text)}")
    assert list(frame.columns) == ["a", "b", "c"] and frame["a"].tolist() == [1, 2]
    assert report["format"] == "jsonl" and report["bad_lines"] == 2
    assert report["bad_line_numbers"] == [2, 5]
    frame, _ = read_table(_file(tmp_path, "rows.jsonl", text), columns=["b", "a"])
    assert list(frame.columns) == ["b", "a"]  # .jsonl by suffix; columns select and order
    with pytest.raises(UserError, match="has no column.* zzz"):
        read_table(_file(tmp_path, "rows.jsonl", text), columns=["zzz"])
    bad = _file(tmp_path, "bad.jsonl", "a\n{oops\n\n[1]\n")
    with pytest.raises(
        UserError, match=r"none of its 3 line\(s\) is a JSON object .*lines: 1, 2, 4"
    ):
        read_table(f"jsonl:{bad}")


def test_unusable_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="csv file .*missing.csv does not exist"):
        read_table(f"csv:{tmp_path / 'missing.csv'}")
    with pytest.raises(UserError, match="is a folder"):
        read_table(f"csv:{tmp_path}")
    with pytest.raises(UserError, match="is empty"):
        read_table(_file(tmp_path, "empty.csv", "\n  \n"))
    with pytest.raises(UserError, match="has a header but no rows"):
        read_table(_file(tmp_path, "header.csv", "a,b\n"))
    with pytest.raises(UserError, match="unknown encoding 'klingon'"):
        read_table(_file(tmp_path, "t.csv", "a,b\n1,2\n"), encoding="klingon")
