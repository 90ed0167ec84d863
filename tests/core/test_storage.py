"""core.storage: staged writes are kept when the work succeeds and removed when it fails."""

from __future__ import annotations

import threading

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from core.storage import StagedWrites, staged_writes, storage_replace


def test_files_saved_in_a_block_that_succeeds_are_kept():
    with staged_writes() as staged:
        name = staged.save("things/a.txt", b"alpha")
    assert name == "things/a.txt"
    assert default_storage.open(name).read() == b"alpha"


def test_every_file_saved_in_a_block_that_raises_is_deleted_and_the_error_goes_on():
    names = []
    with pytest.raises(ZeroDivisionError), staged_writes() as staged:
        names.append(staged.save("things/a.txt", b"alpha"))
        names.append(staged.save("things/b.txt", ContentFile(b"beta")))
        1 / 0
    assert len(names) == 2
    assert not any(default_storage.exists(name) for name in names)


def test_a_taken_name_gets_a_free_one_and_the_original_file_survives_a_failure():
    default_storage.save("things/a.txt", ContentFile(b"older"))
    with pytest.raises(RuntimeError), staged_writes() as staged:
        name = staged.save("things/a.txt", b"newer")
        assert name != "things/a.txt"
        raise RuntimeError("fails")
    assert default_storage.open("things/a.txt").read() == b"older"
    assert not default_storage.exists(name)


def test_keep_false_removes_the_files_on_success_too():
    with staged_writes(keep=False) as staged:
        name = staged.save("probe/p.txt", b"x")
        assert default_storage.exists(name)
    assert not default_storage.exists(name)


def test_replace_writes_at_exactly_the_name_and_leaves_no_temporary_file(_media_root):
    storage_replace("r/f.bin", b"one")
    assert storage_replace("r/f.bin", b"two") == "r/f.bin"
    assert default_storage.open("r/f.bin").read() == b"two"
    assert sorted(p.name for p in (_media_root / "r").iterdir()) == ["f.bin"]


def test_a_replaced_file_is_kept_on_failure_when_asked_and_removed_otherwise():
    with pytest.raises(RuntimeError), staged_writes() as staged:
        staged.replace("r/kept.bin", b"k", discard_on_failure=False)
        staged.replace("r/gone.bin", b"g")
        raise RuntimeError("fails")
    assert default_storage.exists("r/kept.bin")
    assert not default_storage.exists("r/gone.bin")


def test_a_file_that_cannot_be_deleted_does_not_hide_the_original_error(monkeypatch):
    def refuse(name):
        raise OSError("read-only")

    with pytest.raises(KeyError), staged_writes() as staged:
        staged.save("things/a.txt", b"alpha")
        monkeypatch.setattr(default_storage, "delete", refuse)
        raise KeyError("original")


def test_threads_may_stage_at_once_and_discard_removes_them_all():
    staged = StagedWrites()
    threads = [threading.Thread(target=staged.save, args=(f"t/{i}.txt", b"x")) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(staged.written) == 8
    staged.discard()
    assert not any(default_storage.exists(name) for name in [f"t/{i}.txt" for i in range(8)])
    assert staged.written == []
