"""`files.staged`, the one writer of a file that must be whole or not at all (a cache entry, a report at
--output, a baseline, a cluster's marker): what a reader sees at the path while it is written and after it
stops part-way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from migratekit.files import STAGING, made, staged


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_the_file_appears_whole_at_the_end_of_the_block_and_not_before(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("before")
    with staged(target) as out:
        out.write("after, ")
        out.flush()
        assert target.read_text() == "before"
        out.write("whole")
    assert target.read_text() == "after, whole"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.parametrize("failure", [KeyboardInterrupt(), OSError(28, "No space left on device"), ValueError()])
def test_a_block_that_raises_leaves_the_file_before_and_no_staging_file(tmp_path: Path, failure: BaseException) -> None:
    target = tmp_path / "base.json"
    target.write_text("before")
    with pytest.raises(type(failure)), staged(target) as out:
        out.write("half of a")
        raise failure
    assert target.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["base.json"]


def test_a_file_written_again_keeps_its_mode_and_a_new_one_gets_the_umasks(tmp_path: Path) -> None:
    new, again = tmp_path / "new", tmp_path / "again"
    again.write_text("old")
    again.chmod(0o640)
    with staged(new) as out:
        out.write("x")
    with staged(again) as out:
        out.write("x")
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask()
    assert again.stat().st_mode & 0o777 == 0o640
    with staged(tmp_path / "marker", new_mode=0o600) as out:
        out.write("x")
    assert (tmp_path / "marker").stat().st_mode & 0o777 == 0o600 & ~umask()


def test_a_link_at_the_path_is_replaced_never_written_through(tmp_path: Path) -> None:
    """A link planted where a file of another user's directory is written (a cluster's marker, as root) must not
    send the write to the file it points at; a caller that wants it followed resolves the path first."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not yours")
    link = tmp_path / "marker"
    link.symlink_to(elsewhere)
    with staged(link) as out:
        out.write("mine")
    assert not link.is_symlink() and link.read_text() == "mine"
    assert elsewhere.read_text() == "not yours"
    followed = tmp_path / "followed"
    followed.symlink_to(elsewhere)
    with staged(followed.resolve()) as out:
        out.write("through")
    assert followed.is_symlink() and elsewhere.read_text() == "through"


def test_a_directory_at_the_path_is_an_oserror_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(OSError), staged(tmp_path / "out") as out:
        out.write("x")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_what_it_stages_in_is_what_the_cache_janitor_knows_as_staging(tmp_path: Path) -> None:
    """The janitor removes an old staging file a killed worker left, by its name: the writer's names and the
    janitor's pattern have one owner, and the older writer's (tempfile.mkstemp's) names are known too."""
    seen: list[str] = []
    with staged(tmp_path / f"{'a' * 64}.json") as out:
        seen += [p.name for p in tmp_path.iterdir()]
        out.write("{}")
    assert len(seen) == 1 and STAGING.fullmatch(seen[0]), seen
    assert STAGING.fullmatch(".k3j_x9a2.tmp")
    assert not STAGING.fullmatch(f"{'a' * 64}.json") and not STAGING.fullmatch("notes.tmp")


def test_made_removes_on_a_failure_only_the_directories_it_made_and_only_empty_ones(tmp_path: Path) -> None:
    (tmp_path / "kept").mkdir()
    with pytest.raises(OSError), made(tmp_path / "kept" / "a" / "b") as directory:
        assert directory.is_dir()
        raise OSError("a full disk")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"] and not any((tmp_path / "kept").iterdir())
    with pytest.raises(KeyboardInterrupt), made(tmp_path / "kept" / "a" / "b") as directory:
        (tmp_path / "kept" / "a" / "someone's.txt").write_text("x")  # written meanwhile: its directory stays
        raise KeyboardInterrupt
    assert sorted(p.name for p in (tmp_path / "kept" / "a").iterdir()) == ["someone's.txt"]
    with made(tmp_path / "kept" / "c") as directory:
        pass
    assert directory.is_dir()  # kept when the block ends well


def test_files_staged_together_take_their_places_together_or_not_at_all(tmp_path: Path) -> None:
    from migratekit.files import staged_together

    old = {name: f"old {name}" for name in ("a.yaml", "b.yaml")}
    for name, text in old.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "a.yaml").chmod(0o640)
    with pytest.raises(OSError), staged_together() as write:
        write(tmp_path / "a.yaml", "new a")
        write(tmp_path / "b.yaml", "new b")
        raise OSError(28, "No space left on device")  # as the third Job's write would
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == old  # and no staging file
    with staged_together() as write:
        write(tmp_path / "a.yaml", "new a")
        write(tmp_path / "c.yaml", "new c")
        assert (tmp_path / "a.yaml").read_text() == "old a.yaml"
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "a.yaml": "new a",
        "b.yaml": "old b.yaml",
        "c.yaml": "new c",
    }
    assert (tmp_path / "a.yaml").stat().st_mode & 0o777 == 0o640
