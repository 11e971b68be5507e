"""`prunelab eval` sweeps without Ray: the (method x sparsity x preset) grid, rows streamed to the JSON file
as they finish, a half-done file resumed instead of started over, and files of another run refused."""
import importlib
import json

import pytest

from prunelab import cli
from prunelab.speech.evaluate import grid

evaluate_mod = importlib.import_module("prunelab.speech.evaluate")

GRID = ["--methods", "kmeans,magnitude", "--sparsities", "0.2,0.4", "--preset", "uniform,ffn"]


def _eval(data, out, *extra, model="tiny:ctc"):
    return cli.main(["eval", "--model", model, "--data", str(data), *GRID, "--json", str(out), *extra])


def _strip(rows):
    """Rows without their timing (the one field that differs between two runs)."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_grid_nests_presets_methods_sparsities_after_the_baseline():
    cells = grid(["kmeans", "magnitude"], [0.2, 0.4], ["uniform", "ffn"])
    assert [(c.method, c.sparsity, c.preset) for c in cells] == [("none", 0.0, "all")] + [
        (m, s, p) for p in ("uniform", "ffn") for m in ("kmeans", "magnitude") for s in (0.2, 0.4)]
    assert len(grid(["kmeans", "kmeans"], [0.2, 0.2], ["ffn"])) == 2  # duplicates run once
    assert grid(["kmeans"], [0.2], ["ffn"])[0].preset == "ffn"  # one preset: the baseline row carries it


@pytest.fixture
def full_run(tiny_data, tmp_path):
    out = tmp_path / "full.json"
    assert _eval(tiny_data, out) == 0
    return json.loads(out.read_text())


def test_rows_stream_to_the_file_and_a_crashed_sweep_resumes(tiny_data, tmp_path, monkeypatch, capsys, full_run):
    assert len(full_run) == 9 and {r["preset"] for r in full_run[1:]} == {"uniform", "ffn"}
    assert all(r["model"] == "tiny:ctc" and r["seed"] == 0 for r in full_run)
    real = evaluate_mod.run_cell
    calls = []

    def crash_on_fourth(model, cell, *a, **kw):
        calls.append(cell.key)
        if len(calls) == 4:
            raise KeyboardInterrupt  # stopped half way (Ctrl-C)
        return real(model, cell, *a, **kw)

    out = tmp_path / "half.json"
    monkeypatch.setattr(evaluate_mod, "run_cell", crash_on_fourth)
    assert _eval(tiny_data, out) == 130
    half = json.loads(out.read_text())
    assert _strip(half) == _strip(full_run[:3])  # the three finished rows were on disk before the stop

    calls.clear()
    monkeypatch.setattr(evaluate_mod, "run_cell", lambda *a, **kw: (calls.append(a[1].key), real(*a, **kw))[1])
    capsys.readouterr()
    assert _eval(tiny_data, out) == 0
    assert "3 of 9 rows already there" in capsys.readouterr().err
    assert len(calls) == 6 and not set(calls) & {tuple(evaluate_mod.EvalRow.from_dict(r).key) for r in half}
    resumed = json.loads(out.read_text())
    assert _strip(resumed) == _strip(full_run)
    assert [r["seconds"] for r in resumed[:3]] == [r["seconds"] for r in half]  # kept, not measured again


def test_a_finished_sweep_reruns_nothing_and_keeps_rows_of_other_cells(tiny_data, tmp_path, monkeypatch, full_run):
    out = tmp_path / "full.json"
    out.write_text(json.dumps(full_run))
    monkeypatch.setattr(evaluate_mod, "run_cell", lambda *a, **kw: pytest.fail("nothing left to run"))
    monkeypatch.setattr(cli, "_open", lambda spec: pytest.fail("no model needed"))
    assert _eval(tiny_data, out) == 0
    assert json.loads(out.read_text()) == full_run
    # a narrower sweep into the same file: its rows first, in its order; the others are kept after them
    assert cli.main(["eval", "--model", "tiny:ctc", "--data", str(tiny_data), "--methods", "magnitude",
                     "--sparsities", "0.4", "--preset", "ffn", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["method"], r["sparsity"], r["preset"]) for r in rows[:2]] == [("none", 0.0, "all"), ("magnitude", 0.4, "ffn")]
    assert sorted(map(json.dumps, rows)) == sorted(map(json.dumps, full_run))


@pytest.mark.parametrize("change, message", [
    (["--seed", "1"], "seed 0"),
    (["--dtype", "bfloat16"], "this run: model tiny:ctc [bfloat16]"),
    (["--limit", "1"], "2 utterances"),
])
def test_a_file_of_another_run_is_refused_and_left_alone(tiny_data, tmp_path, capsys, full_run, change, message):
    out = tmp_path / "full.json"
    out.write_text(json.dumps(full_run))
    before = out.read_bytes()
    assert _eval(tiny_data, out, *change) == 2
    err = capsys.readouterr().err
    assert "another run" in err and message in err and "another --json file" in err
    assert out.read_bytes() == before


def test_another_model_is_refused(tiny_data, tmp_path, capsys, full_run):
    out = tmp_path / "full.json"
    out.write_text(json.dumps(full_run))
    assert _eval(tiny_data, out, model="tiny:whisper") == 2
    assert "model tiny:ctc" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["{not json", json.dumps({"rows": []}), json.dumps([{"x": 1}])])
def test_a_file_that_is_not_rows_is_refused_and_left_alone(tiny_data, tmp_path, capsys, content):
    out = tmp_path / "rows.json"
    out.write_text(content)
    assert _eval(tiny_data, out) == 2
    assert f"Cannot resume from {out}" in capsys.readouterr().err
    assert out.read_text() == content


def test_workers_without_ray_say_how_to_install_it(tiny_data, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.setattr(cli, "_open", lambda spec: pytest.fail("nothing is loaded"))
    for extra in (["--workers", "2"], ["--ray-address", "auto"]):
        assert _eval(tiny_data, tmp_path / "rows.json", *extra) == 2
        err = capsys.readouterr().err
        assert "not installed" in err and '.[cluster]' in err
    assert not (tmp_path / "rows.json").exists()


def test_bad_preset_list_is_a_usage_error(tiny_data, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["eval", "--data", str(tiny_data), "--preset", "ffn,fnn"])
    assert e.value.code == 2 and "unknown preset 'fnn'" in capsys.readouterr().err
