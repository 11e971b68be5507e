"""`prunelab eval --workers 2` on a local Ray instance (tiny models, random weights: rows compared, no WER
claims): the same rows as the sequential run, streamed to the JSON file, and a half-done file resumed."""
import contextlib
import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("ray", reason='Ray is the optional extra "cluster" (pip install -e ".[cluster]")')

from prunelab import cli  # noqa: E402

GRID = ["--methods", "kmeans,magnitude", "--sparsities", "0.2,0.4", "--preset", "uniform,ffn"]


@pytest.fixture
def tiny_data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, text in enumerate(["hello world", "a small test", "three words here"]):
        t = np.arange(8000 + 2000 * i) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(folder / f"clip{i}.wav", audio.astype(np.float32), 16000)
        (folder / f"clip{i}.txt").write_text(text)
    return folder


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@contextlib.contextmanager
def local_ray():
    """One local Ray instance, started as the CLI starts it, for several sweeps (a start takes 10-30 s here);
    a sweep that finds Ray running uses it and leaves it running."""
    import ray

    from prunelab.sweep import _init

    _init(ray, None, 2)
    try:
        yield
    finally:
        ray.shutdown()


def test_two_ray_workers_give_the_sequential_rows_and_resume(tiny_data, tmp_path, capsys):
    with local_ray():  # (the CLI starting and stopping its own instance: the test below)
        for model in ("tiny:ctc", "tiny:whisper"):
            _sweep_twice_and_resume(tiny_data, tmp_path / model.replace(":", "-"), capsys, model)
        import ray

        assert ray.is_initialized()  # the sweeps left the instance they did not start running


def _sweep_twice_and_resume(tiny_data, folder, capsys, model):
    folder.mkdir()
    seq, par = folder / "seq.json", folder / "ray.json"
    base = ["eval", "--model", model, "--data", str(tiny_data), *GRID]
    assert cli.main([*base, "--json", str(seq)]) == 0
    sequential = json.loads(seq.read_text())
    assert len(sequential) == 9

    # half done: the baseline and three rows, one of them marked so a re-measured row would show
    half = [dict(r) for r in sequential[:4]]
    half[2]["wer"] = 123.0
    par.write_text(json.dumps(half))
    capsys.readouterr()
    assert cli.main([*base, "--json", str(par), "--workers", "2"]) == 0
    err = capsys.readouterr().err
    assert "Ray: 2 workers on a local Ray instance" in err and "4 of 9 rows already there" in err, (model, err)
    rows = json.loads(par.read_text())
    assert rows[2]["wer"] == 123.0, model  # skipped, not run again
    rows[2]["wer"] = sequential[2]["wer"]
    assert _strip(rows) == _strip(sequential), model  # every row the sequential run measured, in grid order
    assert all(r["seconds"] > 0 for r in rows)


def test_a_worker_that_cannot_load_the_model_fails_the_sweep_with_its_reason(tiny_data, tmp_path, capsys):
    out = tmp_path / "rows.json"
    rc = cli.main(["eval", "--model", str(tmp_path / "no-such-model"), "--data", str(tiny_data), "--methods", "kmeans",
                   "--sparsities", "0.2", "--json", str(out), "--workers", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "A Ray worker died" in err and "no-such-model" in err and "does not exist" in err
    assert not out.exists()  # nothing measured, nothing written
    import ray

    assert not ray.is_initialized()  # the instance it started is stopped again
