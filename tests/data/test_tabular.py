"""Table files: formats, columns, splits, labels and every kind of malformed input."""

from __future__ import annotations

import builtins
import csv
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from lugpi_cli.data import load_dataset
from lugpi_cli.errors import UserError


def write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def rows_for(n_per_label: dict[str, int]) -> list[list]:
    return [
        [f'row {label} {i}, with a comma and "quotes"', label] for label, n in n_per_label.items() for i in range(n)
    ]


def test_csv_without_split_column_carves_test_then_validation(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", ["text", "label"], rows_for({"neg": 50, "pos": 50}))
    ds = load_dataset(str(path), text_col="text", label_col="label")
    assert ds.name == "reviews"
    assert ds.label_names == ["neg", "pos"]
    assert [len(v) for v in ds.splits.values()] == [80, 10, 10]
    assert Counter(s.label for s in ds.splits["test"]) == {0: 5, 1: 5}
    sample = ds.splits["train"][0]
    assert sample.text == sample.prompt and '"quotes"' in sample.text and sample.text_pair is None
    assert ds.source == str(path)


def test_data_argument_and_name_or_path_are_equivalent(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], rows_for({"a": 5, "b": 5}))
    a = load_dataset(None, data=path, text_col="text", label_col="label")
    b = load_dataset(str(path), text_col="text", label_col="label")
    c = load_dataset(str(path), data=str(path), text_col="text", label_col="label")
    assert a.fingerprint() == b.fingerprint() == c.fingerprint()


def test_tsv_with_split_synonyms_prompt_and_id_columns(tmp_path):
    rows = []
    for i in range(30):
        split = ["train", "TRAIN", "training"][i % 3]
        rows.append([f"id{i}", f"sentence {i}\twith tab", f"a picture of {i}", i % 2, split])
    rows += [["d1", "dev one", "p", 0, "dev"], ["d2", "dev two", "p", 1, "Valid"], ["d3", "val three", "p", 1, "val"]]
    rows += [["t1", "test one", "q", 0, "test"], ["t2", "test two", "q", 1, "Testing"]]
    path = write_csv(tmp_path / "pairs.tsv", ["id", "sentence", "draw", "y", "part"], rows, delimiter="\t")
    ds = load_dataset(str(path), text_col="sentence", label_col="y", split_col="part", prompt_col="draw", id_col="id")
    assert [len(v) for v in ds.splits.values()] == [30, 3, 2]
    assert ds.label_names == ["0", "1"]
    first = ds.splits["train"][0]
    assert first.text == "sentence 0 with tab" and first.prompt == "a picture of 0"


def test_integer_labels_sort_numerically_and_floats_read_as_ints(tmp_path):
    path = tmp_path / "nums.jsonl"
    labels = [10, 2, 1.0, "2", 10.0, 1] * 4
    path.write_text("\n".join(json.dumps({"t": f"text {i}", "y": y}) for i, y in enumerate(labels)) + "\n")
    ds = load_dataset(str(path), text_col="t", label_col="y", validation_fraction=0.0, test_fraction=0.0)
    assert ds.label_names == ["1", "2", "10"]
    assert [s.label for s in ds.splits["train"][:6]] == [2, 1, 0, 1, 2, 0]


def test_jsonl_and_json_array(tmp_path):
    records = [{"text": f"t{i}", "label": "x" if i % 2 else "y", "split": "train"} for i in range(20)]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n\n".join(json.dumps(r) for r in records))
    array = tmp_path / "a.json"
    array.write_text(json.dumps(records, indent=2))
    a = load_dataset(str(jsonl), text_col="text", label_col="label", split_col="split")
    b = load_dataset(str(array), text_col="text", label_col="label", split_col="split")
    assert a.label_names == b.label_names == ["x", "y"]
    assert [s.id for s in a.samples()] == [s.id for s in b.samples()]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"text": [f"doc {i}" for i in range(40)], "label": [i % 4 for i in range(40)],
                      "extra": [None] * 40})
    path = tmp_path / "docs.parquet"
    pq.write_table(table, path)
    ds = load_dataset(str(path), text_col="text", label_col="label")
    assert ds.name == "docs" and ds.label_names == ["0", "1", "2", "3"]
    assert sum(len(v) for v in ds.splits.values()) == 40


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1")
    real_import = builtins.__import__

    def no_parquet(name, *args, **kwargs):
        if name.startswith(("pyarrow", "pandas", "fastparquet")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_parquet)
    with pytest.raises(UserError) as err:
        load_dataset(str(path), text_col="text", label_col="label")
    assert "pip install pyarrow" in str(err.value)


def test_corrupt_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(UserError, match="not a readable parquet file"):
        load_dataset(str(path), text_col="text", label_col="label")


def test_ids_are_stable_and_validation_ignores_row_order_with_an_id_column(tmp_path):
    rows = [[f"id{i}", f"text {i}", "ab"[i % 2]] for i in range(100)]
    a = write_csv(tmp_path / "data.csv", ["id", "text", "label"], rows)
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    (tmp_path / "shuffled").mkdir()
    b = write_csv(tmp_path / "shuffled" / "data.csv", ["id", "text", "label"], shuffled)
    da = load_dataset(str(a), text_col="text", label_col="label", id_col="id")
    db = load_dataset(str(b), text_col="text", label_col="label", id_col="id")
    for split in da.splits:
        assert {s.id for s in da.splits[split]} == {s.id for s in db.splits[split]}
    again = load_dataset(str(a), text_col="text", label_col="label", id_col="id")
    assert [s.id for s in again.samples()] == [s.id for s in da.samples()]
    assert len({s.id for s in da.samples()}) == 100


def test_seed_changes_validation_but_not_test(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], rows_for({"a": 100, "b": 100}))
    runs = [load_dataset(str(path), text_col="text", label_col="label", seed=s) for s in (0, 1)]
    assert {s.id for s in runs[0].splits["test"]} == {s.id for s in runs[1].splits["test"]}
    assert {s.id for s in runs[0].splits["validation"]} != {s.id for s in runs[1].splits["validation"]}


def test_max_per_split(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], rows_for({"a": 100, "b": 100}))
    ds = load_dataset(str(path), text_col="text", label_col="label", max_per_split=6)
    assert [len(v) for v in ds.splits.values()] == [6, 6, 6]
    assert all(Counter(s.label for s in v) == {0: 3, 1: 3} for v in ds.splits.values())


# --- malformed input -----------------------------------------------------------


def test_missing_column_names_the_columns_that_exist(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["review", "sentiment"], rows_for({"a": 3}))
    with pytest.raises(UserError) as err:
        load_dataset(str(path), text_col="text", label_col="sentiment")
    message = str(err.value)
    assert "no column 'text'" in message and "'review'" in message and "'sentiment'" in message
    assert str(path) in message


def test_missing_column_options(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], rows_for({"a": 3}))
    with pytest.raises(UserError, match="--label-col"):
        load_dataset(str(path), text_col="text")
    with pytest.raises(UserError, match="--text-col"):
        load_dataset(str(path), label_col="label")


def test_empty_text_is_a_counted_skip(tmp_path):
    rows = rows_for({"a": 10, "b": 10}) + [["", "a"], ["   \n ", "b"], [None, "a"]]
    path = write_csv(tmp_path / "d.csv", ["text", "label"], rows)
    ds = load_dataset(str(path), text_col="text", label_col="label")
    assert ds.skipped == {"empty text": 3}
    assert sum(len(v) for v in ds.splits.values()) == 20


def test_empty_prompt_is_a_counted_skip(tmp_path):
    rows = [[f"t{i}", f"p{i}" if i else "", "ab"[i % 2]] for i in range(10)]
    path = write_csv(tmp_path / "d.csv", ["text", "prompt", "label"], rows)
    ds = load_dataset(str(path), text_col="text", label_col="label", prompt_col="prompt")
    assert ds.skipped == {"empty prompt": 1}


def test_every_row_skipped(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["", "a"], [" ", "b"]])
    with pytest.raises(UserError, match="every row was skipped"):
        load_dataset(str(path), text_col="text", label_col="label")


def test_unknown_label_in_test_names_label_and_line(tmp_path):
    rows = [[f"t{i}", "ab"[i % 2], "train"] for i in range(10)] + [["x", "a", "test"], ["y", "c", "test"]]
    path = write_csv(tmp_path / "d.csv", ["text", "label", "split"], rows)
    with pytest.raises(UserError) as err:
        load_dataset(str(path), text_col="text", label_col="label", split_col="split")
    message = str(err.value)
    assert "label 'c'" in message and "line 13" in message and "test" in message and str(path) in message


def test_empty_label_names_the_line(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["a", "x"], ["b", ""], ["c", "y"]])
    with pytest.raises(UserError, match=r"line 3: empty label in column 'label'"):
        load_dataset(str(path), text_col="text", label_col="label")


def test_unknown_split_value(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label", "s"], [["a", "x", "train"], ["b", "y", "holdout"]])
    with pytest.raises(UserError, match=r"line 3: split 'holdout'"):
        load_dataset(str(path), text_col="text", label_col="label", split_col="s")


def test_no_train_rows(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label", "s"], [["a", "x", "test"], ["b", "y", "dev"]])
    with pytest.raises(UserError, match="no row has split 'train'"):
        load_dataset(str(path), text_col="text", label_col="label", split_col="s")


def test_repeated_and_empty_ids(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["id", "text", "label"], [["1", "a", "x"], ["2", "b", "y"], ["1", "c", "x"]])
    with pytest.raises(UserError, match=r"line 4: id '1' in column 'id' repeats line 2"):
        load_dataset(str(path), text_col="text", label_col="label", id_col="id")
    path = write_csv(tmp_path / "e.csv", ["id", "text", "label"], [["1", "a", "x"], ["", "b", "y"]])
    with pytest.raises(UserError, match=r"line 3: empty id"):
        load_dataset(str(path), text_col="text", label_col="label", id_col="id")


def test_bad_encoding_names_file_and_byte_offset(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\nfine,a\ncaf\xe9,b\n")
    with pytest.raises(UserError) as err:
        load_dataset(str(path), text_col="text", label_col="label")
    message = str(err.value)
    assert str(path) in message and "0xe9" in message and "offset 21" in message and "line 3" in message
    assert "UTF-8" in message and "iconv" in message


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,label\nhello,a\nworld,b\n".encode())
    ds = load_dataset(str(path), text_col="text", label_col="label")
    assert {s.text for s in ds.samples()} == {"hello", "world"}


@pytest.mark.parametrize("name, content", [("e.csv", b""), ("e.tsv", b"\n\n"), ("e.jsonl", b"  \n")])
def test_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=r"is empty"):
        load_dataset(str(path), text_col="text", label_col="label")


def test_header_only_file(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("text,label\n")
    with pytest.raises(UserError, match="no data rows"):
        load_dataset(str(path), text_col="text", label_col="label")


def test_wrong_number_of_fields_names_the_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\nok,a\nan unquoted, comma,b\n")
    with pytest.raises(UserError) as err:
        load_dataset(str(path), text_col="text", label_col="label")
    assert "line 3: 3 fields, but the header has 2" in str(err.value) and "quot" in str(err.value)


def test_multiline_quoted_field_counts_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"two\nlines",a\nok,b\nbad,b,extra\n')
    with pytest.raises(UserError, match="line 5: 3 fields"):
        load_dataset(str(path), text_col="text", label_col="label")


def test_invalid_json_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", label: 2}\n')
    with pytest.raises(UserError, match=r"line 2: invalid JSON"):
        load_dataset(str(path), text_col="text", label_col="label")
    path.write_text('{"text": "a", "label": 1}\n["not", "an", "object"]\n')
    with pytest.raises(UserError, match=r"line 2: expected a JSON object, found list"):
        load_dataset(str(path), text_col="text", label_col="label")


def test_non_text_value(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": {"nested": 1}, "label": 2}\n')
    with pytest.raises(UserError, match=r"line 2: column 'text' holds dict"):
        load_dataset(str(path), text_col="text", label_col="label")


def test_unknown_names_and_missing_files(tmp_path):
    with pytest.raises(UserError, match="unknown data set 'sst2'") as err:
        load_dataset("sst2")
    assert "imdb" in err.value.hint and ".parquet" in err.value.hint
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(str(tmp_path / "nope.csv"), text_col="t", label_col="l")
    with pytest.raises(UserError, match="no data set given"):
        load_dataset(None)
    with pytest.raises(UserError, match="not a built-in name nor a table file"):
        load_dataset(None, data=tmp_path / "notes.txt")
    with pytest.raises(UserError, match="two data files"):
        load_dataset(str(tmp_path / "a.csv"), data=tmp_path / "b.csv")


def test_column_options_are_refused_for_builtins():
    with pytest.raises(UserError, match="text_col applies to table files"):
        load_dataset("imdb", text_col="text")
