"""Run ids: unique UUID strings, increasing within a process (so store indexes append)."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from wfkit._engine.runs import new_run_id


def test_ids_are_uuid_strings_that_increase_within_a_process() -> None:
    ids = [new_run_id() for _ in range(1000)]
    parsed = [uuid.UUID(i) for i in ids]
    assert all(str(p) == i for p, i in zip(parsed, ids, strict=True))
    assert all(p.version == 8 and p.variant == uuid.RFC_4122 for p in parsed)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_threads_never_get_the_same_id() -> None:
    found: list[list[str]] = [[] for _ in range(8)]

    def make(out: list[str]) -> None:
        out.extend(new_run_id() for _ in range(2000))

    threads = [threading.Thread(target=make, args=(out,)) for out in found]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in found for i in out]
    assert len(set(every)) == len(every) == 16000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_ids_of_its_own() -> None:
    new_run_id()  # the parent has handed out ids; the child must not repeat them
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report two ids and leave without running pytest's teardown
        os.write(write, f"{new_run_id()} {new_run_id()}".encode())
        os._exit(0)
    os.close(write)
    child_ids = os.read(read, 200).decode().split()
    os.close(read)
    os.waitpid(pid, 0)
    parent_ids = [new_run_id() for _ in range(2)]
    assert len(child_ids) == 2
    assert child_ids[0][:23] != parent_ids[0][:23]  # another process prefix
    assert not set(child_ids) & set(parent_ids)
