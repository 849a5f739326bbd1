"""Built-in loaders on tiny distributions in their canonical layouts, and where data is looked for."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from lugpi_cli.data import BUILTIN_DATASETS, cache_dir, load_dataset
from lugpi_cli.data import download as download_mod
from lugpi_cli.data.download import Remote, download_dataset
from lugpi_cli.data.samples import sample_id
from lugpi_cli.errors import UserError

from .builders import imdb_files, newsgroups_files, write_cwi, write_tar, write_tree


def test_builtin_names():
    assert BUILTIN_DATASETS == ("imdb", "20newsgroups", "cwi-news", "cwi-wikinews", "cwi-wikipedia")


# --- IMDB ----------------------------------------------------------------------


@pytest.fixture
def imdb_tar(tmp_path) -> Path:
    return write_tar(tmp_path / "aclImdb_v1.tar.gz", imdb_files())


def test_imdb_from_tarball(imdb_tar):
    ds = load_dataset("imdb", data=imdb_tar)
    assert ds.name == "imdb" and ds.label_names == ["neg", "pos"]
    assert [len(v) for v in ds.splits.values()] == [18, 2, 20]
    assert Counter(s.label for s in ds.splits["validation"]) == {0: 1, 1: 1}
    sample = next(s for s in ds.splits["test"] if s.id == sample_id("imdb", "test", "aclImdb/test/pos/3_7.txt"))
    assert sample.text == sample.prompt == "pos review 3 of test. It was so & so."
    assert sample.label == 1 and sample.text_pair is None
    assert all("<" not in s.text for s in ds.samples())
    assert ds.source == str(imdb_tar)


def test_imdb_tarball_folder_and_parent_give_the_same_samples(tmp_path, imdb_tar):
    tree = write_tree(tmp_path / "unpacked", imdb_files())
    from_tar = load_dataset("imdb", data=imdb_tar)
    from_parent_of_tar = load_dataset("imdb", data=imdb_tar.parent)
    from_folder = load_dataset("imdb", data=tree / "aclImdb")
    from_parent = load_dataset("imdb", data=tree)
    assert from_tar.fingerprint() == from_parent_of_tar.fingerprint() == from_folder.fingerprint()
    assert from_folder.fingerprint() == from_parent.fingerprint()
    assert [s.id for s in from_tar.samples()] == [s.id for s in from_folder.samples()]


def test_imdb_samples_in_natural_member_order(imdb_tar):
    ds = load_dataset("imdb", data=imdb_tar)
    test_neg = [s.id for s in ds.splits["test"] if s.label == 0]
    assert test_neg == [sample_id("imdb", "test", f"aclImdb/test/neg/{i}_2.txt") for i in range(10)]


def test_imdb_empty_review_is_counted(tmp_path):
    files = imdb_files()
    files["aclImdb/train/pos/99_8.txt"] = b"<br /><br />  "
    ds = load_dataset("imdb", data=write_tar(tmp_path / "aclImdb_v1.tar.gz", files))
    assert ds.skipped == {"empty text": 1}


def test_imdb_archive_without_reviews(tmp_path):
    path = write_tar(tmp_path / "aclImdb_v1.tar.gz", {"other/file.txt": b"x"})
    with pytest.raises(UserError, match="holds no IMDB reviews"):
        load_dataset("imdb", data=path)


def test_truncated_archive(tmp_path, imdb_tar):
    broken = tmp_path / "broken" / "aclImdb_v1.tar.gz"
    broken.parent.mkdir()
    broken.write_bytes(imdb_tar.read_bytes()[:300])
    with pytest.raises(UserError, match="cannot read archive"):
        load_dataset("imdb", data=broken)


def test_max_per_split_on_imdb(imdb_tar):
    ds = load_dataset("imdb", data=imdb_tar, max_per_split=4)
    assert [len(v) for v in ds.splits.values()] == [4, 2, 4]


# --- 20 Newsgroups ---------------------------------------------------------------


@pytest.fixture
def news_tar(tmp_path) -> Path:
    return write_tar(tmp_path / "20news-bydate.tar.gz", newsgroups_files())


def test_newsgroups_from_tarball(news_tar):
    ds = load_dataset("20newsgroups", data=news_tar)
    assert ds.label_names == ["alt.atheism", "rec.autos", "sci.space"]
    assert [len(v) for v in ds.splits.values()] == [28, 3, 30]
    for s in ds.samples():
        assert "@" not in s.text and "From:" not in s.text and "Subject" not in s.text
        assert "Organization" not in s.text
        assert s.text == s.prompt
    wanted = sample_id("20newsgroups", "train", "20news-bydate-train/rec.autos/1003")
    post = next(s for s in ds.samples() if s.id == wanted)
    assert post.text == "In article writes: >Post 3 in rec.autos. I agree. Mail me at ."
    assert post.label == 1


def test_newsgroups_latin1_post(news_tar):
    ds = load_dataset("20newsgroups", data=news_tar)
    wanted = sample_id("20newsgroups", "train", "20news-bydate-train/sci.space/999")
    latin = next(s for s in ds.samples() if s.id == wanted)
    assert latin.text == "Café crème, ¶ 15."


def test_newsgroups_folder_layouts(tmp_path, news_tar):
    tree = write_tree(tmp_path / "20news_home", newsgroups_files())
    expected = load_dataset("20newsgroups", data=news_tar).fingerprint()
    assert load_dataset("20newsgroups", data=tree).fingerprint() == expected
    assert load_dataset("20newsgroups", data=tree / "20news-bydate-train").fingerprint() == expected


def test_newsgroups_group_missing_from_train(tmp_path):
    files = newsgroups_files()
    files["20news-bydate-test/misc.forsale/1"] = b"From: a\n\nfor sale\n"
    with pytest.raises(UserError, match="'misc.forsale' has no training posts"):
        load_dataset("20newsgroups", data=write_tar(tmp_path / "20news-bydate.tar.gz", files))


# --- CWI -------------------------------------------------------------------------


def test_cwi_files(tmp_path):
    folder = write_cwi(tmp_path / "cwi2018-english")
    ds = load_dataset("cwi-news", data=folder)
    assert ds.label_names == ["simple", "complex"]
    assert [len(v) for v in ds.splits.values()] == [7, 7, 7]  # Dev is validation, nothing carved
    first = ds.splits["train"][0]
    assert first.text == 'The "barren" islands, reefs and coral outcrops are believed to be rich.'
    assert first.text_pair == first.prompt == "barren" and first.label == 0
    assert ds.splits["train"][1].text_pair == "islands" and ds.splits["train"][1].label == 1
    assert ds.display_text(first) == f"{first.text} [SEP] barren"
    assert len({s.id for s in ds.samples()}) == 21  # repeated (HIT, span) rows stay distinct
    assert ds.source == str(folder)


@pytest.mark.parametrize("layout", ["parent", "release"])
def test_cwi_folder_layouts(tmp_path, layout):
    if layout == "parent":
        write_cwi(tmp_path / "cwi2018-english", genre="WikiNews")
    else:  # the shared task's own release: traindevset/english + testset/english
        folder = write_cwi(tmp_path / "traindevset" / "english", genre="WikiNews")
        (tmp_path / "testset" / "english").mkdir(parents=True)
        (folder / "WikiNews_Test.tsv").rename(tmp_path / "testset" / "english" / "WikiNews_Test.tsv")
    ds = load_dataset("cwi-wikinews", data=tmp_path)
    assert [len(v) for v in ds.splits.values()] == [7, 7, 7]


def test_cwi_missing_file_is_named(tmp_path):
    folder = write_cwi(tmp_path / "cwi")
    (folder / "News_Dev.tsv").unlink()
    with pytest.raises(UserError) as err:
        load_dataset("cwi-news", data=folder)
    assert "News_Dev.tsv" in str(err.value) and "News_Train.tsv" not in err.value.message
    assert "cwisharedtask2018" in err.value.hint and "--data" in err.value.hint


def test_cwi_bad_rows(tmp_path):
    folder = write_cwi(tmp_path / "cwi")
    path = folder / "News_Test.tsv"
    lines = path.read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join(lines[:2] + [b"\t".join(lines[2].split(b"\t")[:9])] + lines[3:]))
    with pytest.raises(UserError, match=r"News_Test.tsv, line 3: 9 tab-separated fields, expected 11"):
        load_dataset("cwi-news", data=folder)
    fields = lines[2].split(b"\t")
    fields[9] = b"maybe"
    path.write_bytes(b"\r\n".join(lines[:2] + [b"\t".join(fields)] + lines[3:]))
    with pytest.raises(UserError, match=r"line 3: binary label 'maybe' is not 0 or 1"):
        load_dataset("cwi-news", data=folder)
    path.write_bytes(b"\xff" + b"\r\n".join(lines))
    with pytest.raises(UserError, match=r"not valid UTF-8: byte 0xff at byte offset 0"):
        load_dataset("cwi-news", data=folder)


# --- where data is looked for -------------------------------------------------------


def test_lugpi_data_env_then_cache(tmp_path, monkeypatch, imdb_tar):
    monkeypatch.setenv("LUGPI_DATA", str(imdb_tar.parent))
    assert len(load_dataset("imdb").samples()) == 40
    monkeypatch.setenv("LUGPI_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "lugpi" / "datasets"
    cache_dir().mkdir(parents=True)
    write_tar(cache_dir() / "aclImdb_v1.tar.gz", imdb_files(per_class=2))
    assert len(load_dataset("imdb").samples()) == 8


def test_cache_dir_default(monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "lugpi" / "datasets"


@pytest.mark.parametrize(
    "name, fetch",
    [
        ("imdb", "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"),
        ("20newsgroups", "http://qwone.com/~jason/20Newsgroups/20news-bydate.tar.gz"),
        ("cwi-wikipedia", "https://sites.google.com/view/cwisharedtask2018/datasets"),
    ],
)
def test_no_local_copy_says_what_to_fetch(tmp_path, monkeypatch, name, fetch):
    monkeypatch.setenv("LUGPI_DATA", str(tmp_path))
    with pytest.raises(UserError) as err:
        load_dataset(name)
    assert f"no local copy of data set {name!r}" in err.value.message
    assert str(tmp_path) in err.value.message and str(cache_dir()) in err.value.message
    assert fetch in err.value.hint and "--data PATH" in err.value.hint and "$LUGPI_DATA" in err.value.hint


def test_data_path_that_does_not_exist(tmp_path):
    with pytest.raises(UserError, match="--data path .* does not exist"):
        load_dataset("imdb", data=tmp_path / "nowhere")


def test_data_given_is_the_only_place_looked(tmp_path, monkeypatch, imdb_tar):
    monkeypatch.setenv("LUGPI_DATA", str(imdb_tar.parent))
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError, match="no local copy"):
        load_dataset("imdb", data=tmp_path / "other")


def test_a_distribution_given_as_the_name_gets_a_precise_hint(imdb_tar):
    with pytest.raises(UserError, match="not a built-in name nor a table file") as err:
        load_dataset(str(imdb_tar))
    assert f"imdb --data {imdb_tar}" in err.value.hint


def test_names_are_case_insensitive(imdb_tar):
    assert load_dataset("IMDB", data=imdb_tar).name == "imdb"


# --- download (no network here: a file:// URL stands in) -----------------------------


def test_download_verifies_checksum(tmp_path, monkeypatch, imdb_tar):
    digest = hashlib.sha256(imdb_tar.read_bytes()).hexdigest()
    monkeypatch.setitem(download_mod.REMOTES, "imdb", Remote(imdb_tar.as_uri(), "aclImdb_v1.tar.gz", digest))
    path = download_dataset("imdb")
    assert path == cache_dir() / "aclImdb_v1.tar.gz" and path.read_bytes() == imdb_tar.read_bytes()
    assert len(load_dataset("imdb").samples()) == 40
    assert download_dataset("imdb") == path  # present and verified: not fetched again

    monkeypatch.setitem(download_mod.REMOTES, "imdb", Remote(imdb_tar.as_uri(), "aclImdb_v1.tar.gz", "0" * 64))
    with pytest.raises(UserError, match="expected 0000"):
        download_dataset("imdb", dest=tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []


def test_download_errors(tmp_path, monkeypatch):
    monkeypatch.setitem(download_mod.REMOTES, "imdb", Remote((tmp_path / "missing").as_uri(), "a.tar.gz", "0" * 64))
    with pytest.raises(UserError, match="cannot download"):
        download_dataset("imdb", dest=tmp_path / "dl")
    with pytest.raises(UserError, match="cannot be downloaded automatically") as err:
        download_dataset("cwi-news")
    assert "cwisharedtask2018" in err.value.hint


def test_published_checksums():
    assert download_mod.REMOTES["imdb"].sha256 == "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
    assert download_mod.REMOTES["20newsgroups"].sha256 == (
        "8f1b2514ca22a5ade8fbb9cfa5727df95fa587f4c87b786e15c759fa66d95610"
    )
