"""What a user's mistakes get: nothing of theirs deleted, a run's rows never mixed with another's, a saved plan
re-applied as it was made, every impossible setting refused before the work (and before eval's baseline),
and a readable message instead of a traceback or a garbage transcript. Tiny demo models (structure only)."""
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from prunelab import AudioError, ModelLoadError, PlanError, PrunelabError, cli
from prunelab.compression import CompressionConfig, compress
from prunelab.compression.layers import find_layers
from prunelab.compression.plan import Plan
from prunelab.errors import SaveError
from prunelab.models import load_model
from prunelab.models.saved import load_compressed, save_compressed
from prunelab.speech import evaluate as evaluate_module
from prunelab.speech.data import load_eval_set
from prunelab.speech.results import RowFile, data_fingerprint
from prunelab.speech.transcribe import transcribe

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small():
    return compress(load_model("tiny:whisper"), CompressionConfig(method="kmeans", sparsity=0.2, preset="encoder-fc1"))


def test_saving_never_deletes_a_users_files(small, tmp_path, monkeypatch):
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "notes.txt").write_text("important")
    with pytest.raises(SaveError, match="not a model saved by prunelab"):
        save_compressed(small, mine)
    assert (mine / "notes.txt").read_text() == "important" and len(list(mine.iterdir())) == 1
    monkeypatch.chdir(mine)  # `--out .` in a folder of the user's
    with pytest.raises(SaveError):
        save_compressed(small, ".")
    assert (mine / "notes.txt").read_text() == "important"
    a_file = tmp_path / "clip.wav"
    a_file.write_bytes(b"RIFF")
    with pytest.raises(SaveError, match="is a file"):
        save_compressed(small, a_file)
    assert a_file.read_bytes() == b"RIFF"
    (tmp_path / "link").symlink_to(mine)
    with pytest.raises(SaveError, match="symbolic link"):
        save_compressed(small, tmp_path / "link")
    assert (mine / "notes.txt").exists()


def test_a_folder_prunelab_saved_is_replaced_and_shareable(small, tmp_path):
    out = tmp_path / "model"
    save_compressed(small, out)
    (out / "extra.bin").write_bytes(b"x")  # a previous save (with whatever was added) is replaced
    save_compressed(small, out)
    assert not (out / "extra.bin").exists() and load_compressed(out).compression["plan"] == small.compression["plan"]
    empty = tmp_path / "empty"
    empty.mkdir()
    save_compressed(small, empty)
    mask = os.umask(0)
    os.umask(mask)
    for path in [out, *out.iterdir()]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == ((0o777 if path.is_dir() else 0o666) & ~mask), (path.name, oct(mode))


def test_compress_checks_the_output_folder_before_the_work(tmp_path, capsys, monkeypatch):
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "notes.txt").write_text("important")
    monkeypatch.setattr(cli, "_open", lambda *a, **k: pytest.fail("the model was loaded before --out was checked"))
    rc = cli.main(["compress", "--model", "tiny:whisper", "--sparsity", "0.1", "--out", str(mine)])
    assert rc == 2 and "not a model saved by prunelab" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "important"


def test_a_saved_plan_is_applied_with_its_method_and_units(tmp_path, capsys):
    made = tmp_path / "rec"
    assert cli.main(["compress", "--model", "tiny:whisper", "--method", "recommended", "--sparsity", "0.2",
                     "--out", str(made)]) == 0
    record = json.loads((made / "plan.json").read_text())
    assert record["method"] == "predictive" and record["units"] == "foldable"
    capsys.readouterr()
    again = tmp_path / "again"
    assert cli.main(["compress", "--model", "tiny:whisper", "--plan", str(made / "plan.json"), "--out", str(again)]) == 0
    out, err = capsys.readouterr()
    assert "method predictive, allocation plan, units foldable" in out and "recorded in" in err
    assert load_compressed(again).compression["params_removed"] == load_compressed(made).compression["params_removed"]
    # an explicit --method wins, and the difference is pointed out
    other = tmp_path / "other"
    assert cli.main(["compress", "--model", "tiny:whisper", "--plan", str(made / "plan.json"), "--method", "kmeans",
                     "--units", "foldable", "--out", str(other)]) == 0
    out, err = capsys.readouterr()
    assert "method kmeans" in out and "was made with method predictive" in err
    rc = cli.main(["compress", "--model", "tiny:whisper", "--plan", str(made / "plan.json"), "--allocate", "auto",
                   "--out", str(tmp_path / "x")])
    assert rc == 2 and "--allocate auto chooses the cluster counts itself" in capsys.readouterr().err


def test_the_layers_template_works_with_foldable_units(tmp_path):
    template = tmp_path / "plan.json"
    assert cli.main(["layers", "--model", "tiny:whisper", "--plan-out", str(template)]) == 0
    data = json.loads(template.read_text())
    fc1 = next(n for n in data["clusters"] if n.endswith("encoder.layers.0.fc1"))
    data["clusters"][fc1] //= 2
    template.write_text(json.dumps(data))
    assert cli.main(["compress", "--model", "tiny:whisper", "--method", "predictive", "--units", "foldable",
                     "--plan", str(template), "--out", str(tmp_path / "o")]) == 0
    plan = load_compressed(tmp_path / "o").compression["plan"]
    channels = {l.name: l.channels for l in find_layers(load_model("tiny:whisper").model)}
    assert {n: k for n, k in plan.items() if k < channels[n]} == {fc1: data["clusters"][fc1]}
    with pytest.raises(PlanError, match="multiple of"):  # a compressed non-leader or a bad K is still refused
        Plan({n: k - 1 for n, k in data["clusters"].items() if n.endswith("self_attn.q_proj")}).validate_units(
            find_layers(load_model("tiny:whisper").model), "foldable")


def test_a_preset_that_selects_no_layer_is_refused():
    ctc = load_model("tiny:ctc")
    with pytest.raises(PlanError, match="selects no layer of tiny:ctc.*encoder-fc1"):
        compress(ctc, CompressionConfig(method="kmeans", sparsity=0.3, preset="decoder-fc1"))
    with pytest.raises(PlanError, match="selects no layer that leads a foldable unit"):
        compress(ctc, CompressionConfig(method="lowrank-qk", sparsity=0.5, preset="decoder-self-qk", units="foldable"))


def test_eval_refuses_an_impossible_cell_before_its_baseline(tiny_data, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(evaluate_module, "transcribe_batch", lambda *a, **k: calls.append(1) or [])
    cases = [(["--methods", "kmeans", "--sparsities", "1.5"], "Sparsity"),
             (["--methods", "kmeans", "--sparsities", "0.1", "--preset", "decoder-fc1"], "selects no layer"),
             (["--methods", "lowrank-qk", "--sparsities", "0.5"], "units='foldable'"),
             (["--methods", "kmeans", "--sparsities", "0.1", "--vocabulary", "ascii"], "Vocabulary trimming")]
    for extra, message in cases:
        rc = cli.main(["eval", "--model", "tiny:ctc", "--data", str(tiny_data), *extra])
        assert rc == 2 and message in capsys.readouterr().err, extra
    assert calls == []


def test_eval_never_resumes_from_rows_of_other_clips(tiny_data, tmp_path):
    utterances = load_eval_set(tiny_data)
    path = tmp_path / "rows.json"
    first = RowFile(path, model="tiny:ctc", seed=0, utterances=len(utterances), data=data_fingerprint(utterances))
    first.write([evaluate_module.EvalRow("none", 0.0, 0.5, "uniform", 0.0, len(utterances), 1.0, model="tiny:ctc")])
    assert len(RowFile(path, model="tiny:ctc", seed=0, utterances=len(utterances),
                       data=data_fingerprint(utterances)).rows) == 1
    other = [type(u)(u.id, u.audio, u.text + " and more") for u in utterances]  # same names, other references
    with pytest.raises(PrunelabError, match="other clips"):
        RowFile(path, model="tiny:ctc", seed=0, utterances=len(other), data=data_fingerprint(other))
    assert stat.S_IMODE(path.stat().st_mode) & 0o044  # readable by others where the umask allows (022 here)


def test_float_audio_in_integer_range_is_refused_not_transcribed():
    model = load_model("tiny:whisper")
    loud = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 32767
    with pytest.raises(AudioError, match="Divide them by 32768"):
        transcribe(model, (16000, loud))
    transcribe(model, (16000, loud / 32768))  # the same clip scaled is fine


def test_ctc_transcripts_carry_no_special_tokens():
    model = load_model("tiny:ctc")
    tokenizer = model.processor.tokenizer
    text = transcribe(model, ROOT / "assets" / "clip1.wav")
    special = [t for t in tokenizer.all_special_tokens if t != getattr(tokenizer, "word_delimiter_token", None)]
    assert text and not any(t in text for t in special), text


def test_model_specs_that_are_not_models_say_so(tmp_path):
    a_file = tmp_path / "clip.wav"
    a_file.write_bytes(b"RIFF")
    with pytest.raises(ModelLoadError, match="is a file; a model is a folder"):
        load_model(str(a_file))
    with pytest.raises(ModelLoadError, match="holds no model"):
        load_model(str(tmp_path))


def test_a_plan_file_without_clusters_says_so():
    with pytest.raises(PlanError, match='no "clusters"'):
        Plan.from_json({"format": "prunelab-plan", "version": 1})


def test_method_options_fold_and_seed_are_type_checked():
    with pytest.raises(PlanError, match="'variance' of method 'kmeans-fold' must be true or false"):
        CompressionConfig(method="kmeans-fold", units="foldable", sparsity=0.2, options={"variance": "yes"})
    with pytest.raises(PlanError, match="must be a whole number"):
        CompressionConfig(method="predictive", units="foldable", sparsity=0.2, options={"rounds": 2.5})
    assert CompressionConfig(method="predictive", units="foldable", sparsity=0.2,
                             options={"ridge": 1}).options.ridge == 1.0  # a whole number is a number
    with pytest.raises(PlanError, match="fold must be True or False"):
        CompressionConfig(sparsity=0.2, fold="no")
    for seed in (-1, "abc", 1.5):
        with pytest.raises(PlanError, match="seed must be a whole number"):
            CompressionConfig(sparsity=0.2, seed=seed)
    assert CompressionConfig(sparsity=0.2, seed=np.int64(3)).seed == 3


def test_compress_takes_method_options_on_the_command_line(tmp_path, capsys):
    args = ["compress", "--model", "tiny:whisper", "--method", "kmeans-fold", "--units", "foldable", "--preset",
            "encoder-fc1", "--sparsity", "0.2"]
    assert cli.main([*args, "--options", '{"variance": true}', "--out", str(tmp_path / "v")]) == 0
    assert load_compressed(tmp_path / "v").compression["options"]["variance"] is True
    for bad, message in (('{"variance": "yes"}', "must be true or false"), ("variance", "not JSON"),
                         ('{"bogus": 1}', "has no option 'bogus'")):
        assert cli.main([*args, "--options", bad, "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
