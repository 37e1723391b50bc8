

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


def test_bootstrap_ci_without_rliable_matches_rliable(monkeypatch):
    """The GPU machine has no rliable: `bootstrap_ci` falls back to a NumPy percentile bootstrap
    instead of failing a finished run's summary, and its interval is rliable's up to resampling
    noise (here within 0.1 of a spread of 9)."""
    import sys

    import numpy as np

    from purerl.report import bootstrap_ci, summarize

    scores = np.array([0.0, 1.0, 2.0, 2.5, 3.0, 4.0, 5.5, 6.0, 8.0, 9.0])
    with_rliable = {s: bootstrap_ci(scores, s, reps=20_000) for s in ("iqm", "mean")}
    monkeypatch.setitem(sys.modules, "rliable", None)  # `from rliable import …` raises ImportError
    for statistic, (low, high) in with_rliable.items():
        got = bootstrap_ci(scores, statistic, reps=20_000)
        assert np.allclose(got, (low, high), atol=0.1), (statistic, got, (low, high))
        assert got[0] < (scores.mean() if statistic == "mean" else 4.0) < got[1]
    summary = summarize(scores)  # a run's final table still gets its interval without rliable
    assert summary["iqm_ci95"][0] < summary["iqm"] < summary["iqm_ci95"][1]
    assert np.allclose(summary["iqm_ci95"], with_rliable["iqm"], atol=0.3)  # 2,000 resamples: noisier
