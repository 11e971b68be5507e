"""CLI end to end with the tiny demo models (random weights: structure only, no WER claims), and the exit
code of every way a command can fail."""
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from prunelab import cli
from prunelab.compression import RECOMMENDED, CompressionConfig, compress
from prunelab.compression.layers import find_layers
from prunelab.compression.plan import PRESETS, Plan
from prunelab.models import load_model
from prunelab.models.saved import load_compressed
from prunelab.speech.evaluate import EvalRow
from prunelab.speech.metrics import wer
from prunelab.speech.transcribe import transcribe

ROOT = Path(__file__).resolve().parents[1]


def test_compress_recommended_auto(tmp_path, capsys):
    out = tmp_path / "small"
    rc = cli.main(["compress", "--model", "tiny:ctc", "--method", "recommended", "--allocate", "auto",
                   "--sparsity", "0.3", "--preset", "ffn", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert f"recommended = {RECOMMENDED['method']}" in text and "allocation auto" in text
    assert f"saved to {out}" in text
    small = load_compressed(out)
    assert small.compression["method"] == RECOMMENDED["method"]
    assert small.compression["allocate"] == "auto"
    # the same as the library call with the same settings
    same = compress(load_model("tiny:ctc"), CompressionConfig(method="recommended", allocate="auto", sparsity=0.3,
                                                              preset="ffn"))
    assert small.compression["plan"] == same.compression["plan"]
    state = same.model.state_dict()
    assert all(np.array_equal(t.numpy(), state[k].numpy()) for k, t in small.model.state_dict().items())


def test_compress_default_recommended_allocation(tmp_path, capsys):
    rc = cli.main(["compress", "--model", "tiny:whisper", "--method", "recommended", "--sparsity", "0.2",
                   "--out", str(tmp_path / "w")])
    assert rc == 0
    assert f"allocation {RECOMMENDED['allocate']}" in capsys.readouterr().out
    # no --preset: the layers the recommended setting was measured on
    small = load_compressed(tmp_path / "w")
    layers = {l.name: l for l in find_layers(small.model)}
    planned = small.compression["plan"]
    assert planned and all(PRESETS[RECOMMENDED["preset"]](layers[name]) for name in planned)


def test_compress_with_a_plan_file(tmp_path, capsys):
    assert cli.main(["layers", "--model", "tiny:ctc", "--plan-out", str(tmp_path / "plan.json")]) == 0
    listed = capsys.readouterr().out.strip().splitlines()
    layers = find_layers(load_model("tiny:ctc").model)
    assert [line.split("\t")[0] for line in listed] == [l.name for l in layers]
    assert listed[0].split("\t")[1:] == [layers[0].part, layers[0].group, layers[0].kind,
                                         f"{layers[0].out_features}x{layers[0].in_features}"]
    template = json.loads((tmp_path / "plan.json").read_text())
    assert template["clusters"] == {l.name: l.channels for l in layers} and template["base_model"] == "tiny:ctc"
    fc1 = next(l for l in layers if l.kind == "fc1")
    template["clusters"][fc1.name] = 10
    (tmp_path / "plan.json").write_text(json.dumps(template))
    rc = cli.main(["compress", "--model", "tiny:ctc", "--plan", str(tmp_path / "plan.json"), "--no-fold",
                   "--out", str(tmp_path / "out")])
    assert rc == 0 and "allocation plan" in capsys.readouterr().out
    small = load_compressed(tmp_path / "out")
    assert small.compression["plan"] == template["clusters"] and not small.compression["folded"]
    assert small.model.get_submodule(fc1.name).k == 10  # unfolded: a ClusteredLinear with 10 rows


def test_transcribe_prints_one_line_per_file_and_fails_for_a_bad_one(tmp_path, capsys):
    clips = [str(p) for p in sorted((ROOT / "assets").glob("clip*.wav"))[:2]]
    model = load_model("tiny:ctc")
    assert cli.main(["transcribe", "--model", "tiny:ctc", clips[0]]) == 0
    assert capsys.readouterr().out == transcribe(model, clips[0]) + "\n"  # one file: the bare transcript
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    rc = cli.main(["transcribe", "--model", "tiny:ctc", clips[0], str(bad), clips[1]])
    captured = capsys.readouterr()
    assert rc == 2  # one bad file fails the command, the others are still transcribed
    assert captured.out.splitlines() == [f"{c}\t{transcribe(model, c)}" for c in (clips[0], clips[1])]
    assert f"error: {bad}" in captured.err and "corrupt" in captured.err


# every field an eval row has, with what it must hold (row i of: none, magnitude @ 0.3, recommended @ 0.3)
def _expected_rows(tiny_data):
    from prunelab.speech.data import load_eval_set

    model = load_model("tiny:ctc")
    utts = load_eval_set(tiny_data)
    refs = [u.text for u in utts]
    layers = find_layers(model.model)
    planned = Plan.from_sparsity(layers, 0.3, "encoder-ffn").sparsity(layers)
    magnitude = compress(model, CompressionConfig(method="magnitude", sparsity=0.3, preset="encoder-ffn"))
    recommended = compress(model, CompressionConfig(method="recommended", sparsity=0.3, preset="encoder-ffn"))
    score = [wer(refs, [transcribe(m, u.audio) for u in utts]) for m in (model, magnitude, recommended)]
    return [
        {"method": "none", "sparsity": 0.0, "wer": score[0], "preset": "encoder-ffn", "model_sparsity": 0.0,
         "utterances": 2, "allocate": "uniform", "resolved_method": None},
        {"method": "magnitude", "sparsity": 0.3, "wer": score[1], "preset": "encoder-ffn",
         "model_sparsity": planned, "utterances": 2, "allocate": "uniform", "resolved_method": None},
        {"method": "recommended", "sparsity": 0.3, "wer": score[2], "preset": "encoder-ffn",
         "model_sparsity": recommended.compression["sparsity"], "utterances": 2,
         "allocate": RECOMMENDED["allocate"], "resolved_method": RECOMMENDED["method"]},
    ], (magnitude, recommended)


def test_eval_json_rows(tiny_data, tmp_path, capsys):
    out = tmp_path / "rows.json"
    rc = cli.main(["eval", "--model", "tiny:ctc", "--data", str(tiny_data), "--methods", "magnitude,recommended",
                   "--sparsities", "0.3", "--preset", "encoder-ffn", "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    expected, compressed = _expected_rows(tiny_data)
    assert len(rows) == 3
    for row, want, extra in zip(rows, expected, [None, *compressed]):
        assert set(row) == {f.name for f in fields(EvalRow)}  # the whole schema, nothing dropped on the way
        assert isinstance(row["seconds"], float) and row["seconds"] > 0
        for key, value in want.items():
            assert row[key] == pytest.approx(value, rel=1e-9) if isinstance(value, float) else row[key] == value, key
        if "params_removed" in row:  # the fraction of all parameters really gone
            removed = 0.0 if extra is None else extra.compression["params_removed"]
            assert row["params_removed"] == pytest.approx(removed)
    table = [line.split() for line in capsys.readouterr().out.strip().splitlines()]
    assert len(table) == 4 and table[0][:3] == ["method", "alloc", "preset"] and table[0][-2:] == ["WER", "utts"]
    names = ["none", "magnitude", f"recommended={RECOMMENDED['method']}"]
    for cells, name, want in zip(table[1:], names, expected):
        assert cells[:3] == [name, want["allocate"], "encoder-ffn"] and cells[-1] == "2"
        assert cells[-2] == f"{want['wer']:.2%}"


def test_eval_auto_allocation_ctc(tiny_data, tmp_path):
    out = tmp_path / "rows.json"
    rc = cli.main(["eval", "--model", "tiny:ctc", "--data", str(tiny_data), "--methods", "kmeans",
                   "--sparsities", "0.2", "--allocate", "auto", "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [r["method"] for r in rows] == ["none", "kmeans"] and rows[1]["allocate"] == "auto"
    assert rows[0]["preset"] == rows[1]["preset"] == "uniform"
    layers = find_layers(load_model("tiny:ctc").model)
    assert rows[1]["model_sparsity"] == pytest.approx(0.2, abs=max(l.in_features + 1 for l in layers)
                                                       / sum(l.params for l in layers))


def test_eval_rejects_unknown_method_before_loading(tiny_data, monkeypatch, capsys):
    import prunelab.models

    def boom(*a, **k):
        raise AssertionError("model loaded before the method names were checked")

    monkeypatch.setattr(prunelab.models, "load_model", boom)
    rc = cli.main(["eval", "--model", "tiny:whisper", "--data", str(tiny_data), "--methods", "magnitude,kmean"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "kmean" in err and "did you mean 'kmeans'" in err and "recommended" in err


# --- exit codes: argparse usage errors exit 2; library errors return 2 with one "error:" line -----------------

USAGE_ERRORS = {
    "no command": ([], "required"),
    "unknown command": (["shrink"], "invalid choice"),
    "unknown method": (["compress", "--model", "tiny:ctc", "--method", "nope", "--sparsity", "0.2", "--out", "x"],
                       "invalid choice: 'nope'"),
    "no --out": (["compress", "--model", "tiny:ctc", "--sparsity", "0.2"], "--out"),
    "sparsity and plan": (["compress", "--sparsity", "0.2", "--plan", "p.json", "--out", "x"], "not allowed with"),
    "sparsity not a number": (["compress", "--sparsity", "lots", "--out", "x"], "invalid float value"),
    "unknown preset": (["compress", "--sparsity", "0.2", "--preset", "everything", "--out", "x"], "invalid choice"),
    "unknown allocation": (["compress", "--sparsity", "0.2", "--allocate", "best", "--out", "x"], "invalid choice"),
    "bad sparsities": (["eval", "--data", "d", "--sparsities", "0.1,lots"], "comma-separated numbers"),
    "eval without data": (["eval", "--methods", "kmeans"], "--data"),
    "transcribe without audio": (["transcribe"], "audio"),
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_usage_errors_exit_2(case, capsys):
    argv, message = USAGE_ERRORS[case]
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: prunelab") and message in err, err


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["compress", "--help"])
    assert info.value.code == 0 and "--sparsity" in capsys.readouterr().out


def _library_errors(tmp_path, tiny_data):
    bad_plan = tmp_path / "bad-plan.json"
    bad_plan.write_text(json.dumps({"clusters": {"hubert.encoder.layers.7.fc1": 3}}))
    out = str(tmp_path / "out")
    return {
        "no sparsity or plan": (["compress", "--model", "tiny:ctc", "--out", out], "Give --sparsity"),
        "sparsity out of range": (["compress", "--model", "tiny:ctc", "--sparsity", "1.5", "--out", out], "Sparsity"),
        "missing plan file": (["compress", "--model", "tiny:ctc", "--plan", str(tmp_path / "none.json"), "--out", out],
                              "Cannot read plan file"),
        "plan names an unknown layer": (["compress", "--model", "tiny:ctc", "--plan", str(bad_plan), "--out", out],
                                        "does not have"),
        "unknown model": (["compress", "--model", "tiny:nothing", "--sparsity", "0.2", "--out", out], "tiny:ctc"),
        "unknown model for layers": (["layers", "--model", "tiny:nothing"], "Unknown model"),
        "unknown model for transcribe": (["transcribe", "--model", "tiny:nothing", "a.wav"], "Unknown model"),
        "no eval methods": (["eval", "--model", "tiny:ctc", "--data", str(tiny_data), "--methods", ","],
                            "No methods"),
        "missing eval data": (["eval", "--model", "tiny:ctc", "--data", str(tmp_path / "nowhere")], "not found"),
        "bad eval limit": (["eval", "--model", "tiny:ctc", "--data", str(tiny_data), "--limit", "0"], "limit"),
    }


def test_library_errors_return_2_with_one_message(tmp_path, tiny_data, capsys):
    for case, (argv, message) in _library_errors(tmp_path, tiny_data).items():
        assert cli.main(argv) == 2, case
        captured = capsys.readouterr()
        errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and message.lower() in errors[0].lower(), (case, captured.err)
        assert "Traceback" not in captured.err and captured.out == "", case
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_interrupt_returns_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_layers", interrupted)
    assert cli.main(["layers", "--model", "tiny:ctc"]) == 130
    assert "interrupted" in capsys.readouterr().err
