"""CLI end to end with the tiny demo models (random weights: structure only, no WER claims)."""
import json

import numpy as np
import pytest
import soundfile as sf

from prunelab import cli
from prunelab.compression import RECOMMENDED


@pytest.fixture
def tiny_data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, text in enumerate(["hello world", "a small test"]):
        t = np.arange(8000) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(folder / f"clip{i}.wav", audio.astype(np.float32), 16000)
        (folder / f"clip{i}.txt").write_text(text)
    return folder


def test_compress_recommended_auto(tmp_path, capsys):
    from prunelab.models.saved import load_compressed

    out = tmp_path / "small"
    rc = cli.main(["compress", "--model", "tiny:ctc", "--method", "recommended", "--allocate", "auto",
                   "--sparsity", "0.3", "--preset", "ffn", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert f"recommended = {RECOMMENDED['method']}" in text and "allocation auto" in text
    small = load_compressed(out)
    assert small.compression["method"] == RECOMMENDED["method"]
    assert small.compression["allocate"] == "auto"


def test_compress_default_recommended_allocation(tmp_path, capsys):
    rc = cli.main(["compress", "--model", "tiny:whisper", "--method", "recommended", "--sparsity", "0.2",
                   "--out", str(tmp_path / "w")])
    assert rc == 0
    assert f"allocation {RECOMMENDED['allocate']}" in capsys.readouterr().out
    # no --preset: the layers the recommended setting was measured on
    from prunelab.compression.layers import find_layers
    from prunelab.compression.plan import PRESETS
    from prunelab.models.saved import load_compressed

    small = load_compressed(tmp_path / "w")
    layers = {l.name: l for l in find_layers(load_compressed(tmp_path / "w").model)}
    planned = small.compression["plan"]
    assert planned and all(PRESETS[RECOMMENDED["preset"]](layers[name]) for name in planned)


def test_eval_json_rows(tiny_data, tmp_path, capsys):
    out = tmp_path / "rows.json"
    rc = cli.main(["eval", "--model", "tiny:whisper", "--data", str(tiny_data), "--methods", "magnitude,recommended",
                   "--sparsities", "0.3", "--preset", "encoder-ffn", "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [r["method"] for r in rows] == ["none", "magnitude", "recommended"]
    for r in rows:
        assert {"method", "sparsity", "wer", "allocate"} <= set(r)
        assert isinstance(r["wer"], float) and r["wer"] >= 0
    assert rows[2]["resolved_method"] == RECOMMENDED["method"] and rows[2]["allocate"] == RECOMMENDED["allocate"]
    assert rows[1]["sparsity"] == 0.3 and rows[1]["utterances"] == 2
    assert "recommended=" in capsys.readouterr().out


def test_eval_auto_allocation_ctc(tiny_data, tmp_path):
    out = tmp_path / "rows.json"
    rc = cli.main(["eval", "--model", "tiny:ctc", "--data", str(tiny_data), "--methods", "kmeans",
                   "--sparsities", "0.2", "--allocate", "auto", "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    assert rows[1]["method"] == "kmeans" and rows[1]["allocate"] == "auto"


def test_eval_rejects_unknown_method_before_loading(tiny_data, monkeypatch, capsys):
    import prunelab.models

    def boom(*a, **k):
        raise AssertionError("model loaded before the method names were checked")

    monkeypatch.setattr(prunelab.models, "load_model", boom)
    rc = cli.main(["eval", "--model", "tiny:whisper", "--data", str(tiny_data), "--methods", "magnitude,kmean"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "kmean" in err and "did you mean 'kmeans'" in err and "recommended" in err


def test_compress_rejects_unknown_method():
    with pytest.raises(SystemExit):
        cli.main(["compress", "--model", "tiny:ctc", "--method", "nope", "--sparsity", "0.2", "--out", "x"])
