

def test_atomic_write_gives_files_the_umask_mode(tmp_path):
    """Result files are readable by others as an ordinary open() would make them (mkstemp's
    0600 is not kept)."""
    import os
    import stat

    from purerl.report import atomic_write

    old = os.umask(0o022)
    try:
        path = tmp_path / "results.json"
        atomic_write(str(path), "{}")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        os.umask(0o077)
        atomic_write(str(path), "{}")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        os.umask(old)
