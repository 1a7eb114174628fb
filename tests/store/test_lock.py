def test_lock_busy_reports_a_held_wait_lock_and_nothing_else(tmp_path) -> None:
    from privlab.store.lock import lock_busy, wait_lock

    path = tmp_path / "locks" / "entry.lock"
    assert lock_busy(path) is False  # no file
    with wait_lock(path):
        assert lock_busy(path) is True
    assert lock_busy(path) is False  # released, file left behind
