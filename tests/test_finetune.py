"""Fine-tuning a compressed model (prunelab.recovery.finetune): what trains, on which labels, what is saved, resume,
and every bad input refused before any work. Tiny random-weight models and made-up clips: never read WER here."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from prunelab import CompressionConfig, compress, load_model
from prunelab.errors import SaveError
from prunelab.recovery import finetune as ft_module
from prunelab.recovery.distill import coarsen, decoder_prompt, kl_loss
from prunelab.recovery.finetune import FinetuneConfig, FinetuneError, FinetuneInterrupted, finetune
from prunelab.recovery.trainset import load_training_data, pack, whisper_samples
from prunelab.speech import transcribe_batch

FC1 = CompressionConfig(method="kmeans", sparsity=0.5, preset="encoder-fc1")


def _clip(i: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    rng = np.random.default_rng(i)
    return (0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _folder(path, texts: dict[str, str | None], seconds: float = 0.5):
    path.mkdir(parents=True, exist_ok=True)
    for i, (name, text) in enumerate(texts.items()):
        sf.write(path / f"{name}.wav", _clip(i, seconds), 16000)
        if text is not None:
            (path / f"{name}.txt").write_text(text)
    return path


@pytest.fixture(scope="module")
def whisper_pair():
    original = load_model("tiny:whisper")
    return original, compress(original, FC1)


@pytest.fixture(scope="module")
def ctc_pair():
    original = load_model("tiny:ctc")
    return original, compress(original, CompressionConfig(method="kmeans", sparsity=0.5, preset="ffn"))


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.model.state_dict().items()}


def _whisper_ce(model, clips, texts) -> float:
    """Cross-entropy of ``texts`` under teacher forcing, built here from the tokenizer (not from prunelab's code):
    prompt <|startoftranscript|><|en|><|transcribe|><|notimestamps|>, the text with a leading space, <|endoftext|>."""
    tok = model.processor.tokenizer
    prompt = tok.convert_tokens_to_ids(["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"])
    feats = model.processor.feature_extractor(clips, sampling_rate=16000, return_tensors="pt").input_features
    total, count = 0.0, 0
    with torch.no_grad():
        for b, text in enumerate(texts):
            ids = tok.encode(" " + text, add_special_tokens=False) + [tok.eos_token_id]
            logits = model.model.eval()(input_features=feats[b:b + 1],
                                        decoder_input_ids=torch.tensor([prompt + ids[:-1]])).logits[0]
            total += F.cross_entropy(logits[len(prompt) - 1:], torch.tensor(ids), reduction="sum").item()
            count += len(ids)
    return total / count


def test_one_step_lowers_the_whisper_loss_on_its_batch(whisper_pair, tmp_path):
    _, small = whisper_pair
    texts = {"a": "hello world", "b": "a small test"}
    data = _folder(tmp_path / "data", texts)
    clips = [_clip(0), _clip(1)]
    before = _whisper_ce(small, clips, list(texts.values()))
    tuned = finetune(small, data, FinetuneConfig(epochs=1, batch_size=2, pack=False, learning_rate=1e-3))
    assert tuned.compression["recovery"][-1]["steps"] == 1
    assert _whisper_ce(tuned, clips, list(texts.values())) < before - 1e-3


def test_one_step_lowers_the_ctc_loss_on_its_batch(ctc_pair, tmp_path):
    _, small = ctc_pair
    data = _folder(tmp_path / "data", {"a": "HELLO", "b": "TEST"})
    vocab = small.processor.tokenizer.get_vocab()

    def ctc(model) -> float:
        model.model.eval()
        with torch.no_grad():
            losses = []
            for i, text in enumerate(["HELLO", "TEST"]):
                x = torch.tensor(small.processor.feature_extractor(_clip(i), sampling_rate=16000).input_values[0])[None]
                logp = model.model(input_values=x).logits.log_softmax(-1)[0]
                target = torch.tensor([vocab[c] for c in text])
                losses.append(F.ctc_loss(logp[:, None], target[None], [logp.shape[0]], [len(text)],
                                         blank=vocab["<pad>"], reduction="sum").item() / len(text))
        return float(np.mean(losses))

    before = ctc(small)
    tuned = finetune(small, data, FinetuneConfig(epochs=1, batch_size=2, train="all", learning_rate=1e-3))
    assert ctc(tuned) < before - 1e-3


def test_the_finetuned_whisper_writes_what_it_learned_through_transcribe(whisper_pair, tmp_path):
    """Trained behind the decoder prompt transcribe() forces (the tokenizer's own prefix for English transcription
    without timestamps), the model starts its transcript with the word it learned."""
    _, small = whisper_pair
    tok = copy.deepcopy(small.processor.tokenizer)  # set_prefix_tokens changes it
    tok.set_prefix_tokens(language="en", task="transcribe", predict_timestamps=False)
    assert decoder_prompt(small) == tok.prefix_tokens
    data = _folder(tmp_path / "data", {"a": "hello world"})
    tuned = finetune(small, data, FinetuneConfig(epochs=8, batch_size=1, train="all", learning_rate=5e-3))
    assert transcribe_batch(tuned, [_clip(0)], sampling_rate=16000)[0].startswith("hello world")
    assert not transcribe_batch(small, [_clip(0)], sampling_rate=16000)[0].startswith("hello")


def test_distillation_labels_are_the_teachers_transcripts(whisper_pair, tmp_path):
    """Unlabelled clips + teacher (hard targets only) train exactly like the same clips labelled with the teacher's
    transcripts."""
    original, small = whisper_pair
    clips = [_clip(0), _clip(1)]
    said = transcribe_batch(original, clips, sampling_rate=16000)
    labelled = _folder(tmp_path / "labelled", dict(zip(["a", "b"], said)))
    unlabelled = _folder(tmp_path / "unlabelled", {"a": None, "b": None})
    config = FinetuneConfig(epochs=1, batch_size=2, pack=False, learning_rate=1e-3, ce_weight=1.0, kl_weight=0.0)
    by_teacher = finetune(small, unlabelled, config, teacher=original)
    by_text = finetune(small, labelled, config)
    assert by_teacher.compression["recovery"][-1]["labels"] == "teacher"
    assert by_text.compression["recovery"][-1]["labels"] == "references"
    a, b = _state(by_teacher), _state(by_text)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.encoder.layers.0.fc1.weight"], _state(small)["model.encoder.layers.0.fc1.weight"])


def test_soft_target_kl_is_the_exact_kl_of_the_coarsened_distributions():
    torch.manual_seed(0)
    teacher, student = torch.randn(5, 40), torch.randn(5, 40)
    T = 2.0
    full = F.kl_div((student / T).log_softmax(-1), (teacher / T).log_softmax(-1), log_target=True,
                    reduction="none").sum(-1).mean()
    assert torch.allclose(kl_loss(student, coarsen(teacher, 40, T), T), full, atol=1e-5)
    assert kl_loss(student, coarsen(teacher, 8, T), T) <= full + 1e-6
    assert kl_loss(student, coarsen(teacher, 8, T), T) > 0
    assert kl_loss(teacher, coarsen(teacher, 8, T), T).abs() < 1e-6
    # a student that cannot write some tokens (trimmed vocabulary, logit -inf): the teacher is renormalised, KL finite
    allowed = torch.ones(40, dtype=torch.bool)
    allowed[:10] = False
    masked = student.masked_fill(~allowed, float("-inf"))
    assert torch.isfinite(kl_loss(masked, coarsen(teacher, 8, T, allowed), T))


def test_train_compressed_changes_only_the_replaced_layers(whisper_pair, tmp_path):
    _, small = whisper_pair
    data = _folder(tmp_path / "data", {"a": "hello world", "b": "a small test"})
    tuned = finetune(small, data, FinetuneConfig(epochs=1, batch_size=1, pack=False, learning_rate=1e-3))
    before, after = _state(small), _state(tuned)
    replaced = tuple(f"{name}." for name in small.compression["modules"])
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(replaced) for k in changed)
    assert {k for k in before if k.startswith(replaced) and k.endswith("weight")} <= changed


def test_the_callers_models_are_left_unchanged(whisper_pair, tmp_path):
    original, small = whisper_pair
    data = _folder(tmp_path / "data", {"a": "hello world"})
    o, s = _state(original), _state(small)
    record = json.dumps(small.compression, sort_keys=True, default=str)
    tuned = finetune(small, data, FinetuneConfig(epochs=1, batch_size=1, train="all", learning_rate=1e-3))
    assert tuned is not small and tuned.model is not small.model
    assert all(torch.equal(o[k], v) for k, v in _state(original).items())
    assert all(torch.equal(s[k], v) for k, v in _state(small).items())
    assert json.dumps(small.compression, sort_keys=True, default=str) == record and "recovery" not in small.compression


def test_a_finetuned_model_saves_and_reloads_to_the_same_outputs(whisper_pair, tmp_path):
    _, small = whisper_pair
    data = _folder(tmp_path / "data", {"a": "hello world", "b": "a small test"})
    out = tmp_path / "out"
    tuned = finetune(small, data, FinetuneConfig(epochs=2, batch_size=1, pack=False, learning_rate=1e-3), out=out)
    assert not (out / "checkpoints").exists() and not (out / "finetune.json").exists()
    again = load_model(str(out))
    step = again.compression["recovery"][-1]
    assert step == tuned.compression["recovery"][-1]
    assert step["step"] == "finetune" and step["labels"] == "references" and step["clips"] == 2 and step["steps"] == 4
    assert step["seconds"] == 1.0 and step["train"] == "compressed" and step["learning_rate"] == 1e-3
    assert step["final_loss"] > 0 and step["time_s"] > 0
    feats = small.processor.feature_extractor([_clip(0)], sampling_rate=16000, return_tensors="pt").input_features
    dec = torch.tensor([[50258, 50259, 50359, 50363, 400]])
    with torch.no_grad():
        assert torch.equal(tuned.model(input_features=feats, decoder_input_ids=dec).logits,
                           again.model(input_features=feats, decoder_input_ids=dec).logits)


def test_lora_is_merged_and_trains_clustered_layers(tmp_path):
    original = load_model("tiny:whisper")
    unfolded = compress(original, CompressionConfig(method="kmeans", sparsity=0.5, preset="encoder-fc1", fold=False))
    data = _folder(tmp_path / "data", {"a": "hello world"})
    tuned = finetune(unfolded, data, FinetuneConfig(epochs=1, batch_size=1, train="lora", learning_rate=1e-2),
                     out=tmp_path / "out")
    assert not any(type(m).__module__.startswith("peft") for m in tuned.model.modules())
    before, after = _state(unfolded), _state(tuned)
    assert set(before) == set(after)
    assert not torch.equal(before["model.encoder.layers.0.fc1.weight"], after["model.encoder.layers.0.fc1.weight"])
    assert not torch.equal(before["model.encoder.layers.0.self_attn.q_proj.weight"],
                           after["model.encoder.layers.0.self_attn.q_proj.weight"])  # an adapter, merged
    again = load_model(str(tmp_path / "out"))
    assert all(torch.equal(after[k], v) for k, v in _state(again).items())


def test_resume_after_ctrl_c_continues_from_the_last_checkpoint(whisper_pair, tmp_path):
    _, small = whisper_pair
    data = _folder(tmp_path / "data", {"a": "hello world", "b": "a small test"})
    config = FinetuneConfig(epochs=2, batch_size=1, pack=False, learning_rate=1e-3)  # 2 steps an epoch
    out = tmp_path / "out"

    def stop_at_3(done, total, message):
        if done == 3 and "loss" in message:
            raise KeyboardInterrupt

    with pytest.raises(FinetuneInterrupted, match=r"checkpoint-2.*resume") as e:
        finetune(small, data, config, out=out, progress=stop_at_3)
    assert "step 3 of 4" in str(e.value)
    assert (out / "finetune.json").is_file() and (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    steps = []
    resumed = finetune(small, data, config, out=out, progress=lambda d, t, m: steps.append(d) if "loss" in m else None)
    assert steps == [3, 4]
    assert resumed.compression["recovery"][-1]["steps"] == 4
    straight = finetune(small, data, config)
    a, b = _state(resumed), _state(straight)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    assert load_model(str(out)).compression["recovery"][-1]["steps"] == 4


def test_distillation_of_unlabelled_ctc_clips_and_whisper_soft_targets(whisper_pair, ctc_pair, tmp_path):
    _, small_ctc = ctc_pair
    tuned = finetune(small_ctc, [_clip(0), _clip(1)], FinetuneConfig(epochs=1, batch_size=2, train="all"))
    step = tuned.compression["recovery"][-1]
    assert step["labels"] == "teacher" and step["teacher"] == "tiny:ctc" and step["soft_targets"]
    _, small = whisper_pair
    step = finetune(small, [_clip(0)], FinetuneConfig(epochs=1, batch_size=1)).compression["recovery"][-1]
    assert step["labels"] == "teacher" and step["teacher"] == "tiny:whisper" and step["soft_targets"]


def test_packing_fills_windows_in_order_within_their_limits(whisper_pair):
    assert pack([10, 10, 10, 25], [1, 1, 1, 1], [0, 1, 2, 3], max_samples=31, max_tokens=9, gap=1) == [[0, 1], [2], [3]]
    assert pack([10, 10, 10], [1, 1, 1], [0, 1, 2], max_samples=32, max_tokens=9, gap=1) == [[0, 1, 2]]
    assert pack([5, 5, 5], [4, 4, 4], [2, 0, 1], max_samples=100, max_tokens=8, gap=0) == [[2, 0], [1]]
    _, small = whisper_pair
    data = load_training_data([_clip(0), _clip(1)], family="whisper")
    samples, _ = whisper_samples(small, data, ["hello", "world"], seed=0)
    assert len(samples) == 1 and sorted(samples[0].clips) == [0, 1]
    first, second = samples[0].clips
    gap = np.zeros(int(0.3 * 16000), np.float32)
    assert np.array_equal(samples[0].audio, np.concatenate([data.clips[first], gap, data.clips[second]]))
    tok = small.processor.tokenizer
    text = tok.encode(" " + ["hello", "world"][first], add_special_tokens=False) + \
        tok.encode(" " + ["hello", "world"][second], add_special_tokens=False)
    assert samples[0].labels == [-100, -100, -100] + text + [tok.eos_token_id]


def test_the_teacher_labels_each_packed_window_once(whisper_pair, monkeypatch):
    """Unlabelled Whisper clips are packed first; the teacher transcribes each window, and that transcript is what
    the window trains on."""
    _, small = whisper_pair
    heard = []

    def transcripts(teacher, clips, **kwargs):
        heard.extend(clips)
        return ["hello there"] * len(clips)

    def stop(student, model, samples, *args):
        heard.append(samples)
        raise KeyboardInterrupt

    monkeypatch.setattr(ft_module, "teacher_transcripts", transcripts)
    monkeypatch.setattr(ft_module, "_train", stop)
    with pytest.raises(KeyboardInterrupt):
        finetune(small, [_clip(0), _clip(1), _clip(2)], FinetuneConfig(epochs=1, kl_weight=0.0))
    window, samples = heard
    assert len(window) == 3 * 8000 + 2 * int(0.3 * 16000)  # the three clips in one window, two gaps
    tok = small.processor.tokenizer
    assert len(samples) == 1 and np.array_equal(samples[0].audio, window)
    assert samples[0].labels[3:] == tok.encode(" hello there", add_special_tokens=False) + [tok.eos_token_id]


# ---------------------------------------------------------------- bad input, refused before any work

@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if fine-tuning gets as far as preparing labels or training."""
    def refuse(*a, **k):
        raise AssertionError("work started before the bad input was refused")

    monkeypatch.setattr(ft_module, "teacher_transcripts", refuse)
    monkeypatch.setattr(ft_module, "_train", refuse)


@pytest.mark.parametrize("texts, message", [
    ({"a": "hello", "b": ""}, "empty: b"),
    ({"a": "hello", "b": None}, "1 of 2 clips have no .txt label: b"),
])
def test_labels_that_do_not_fit_their_audio_are_refused(whisper_pair, tmp_path, no_work, texts, message):
    _, small = whisper_pair
    data = _folder(tmp_path / "data", texts)
    with pytest.raises(FinetuneError, match=message):
        finetune(small, data, FinetuneConfig(epochs=1))


def test_a_label_without_audio_is_refused(whisper_pair, tmp_path, no_work):
    _, small = whisper_pair
    data = _folder(tmp_path / "data", {"a": "hello"})
    (data / "lost.txt").write_text("where is my audio")
    with pytest.raises(FinetuneError, match=r"no audio beside them: lost\.txt"):
        finetune(small, data, FinetuneConfig(epochs=1))


def test_labelled_clips_over_30_s_are_skipped_with_a_note_or_refused(whisper_pair, tmp_path, no_work):
    _, small = whisper_pair
    data = _folder(tmp_path / "long", {"a": "a very long clip"}, seconds=31)
    with pytest.raises(FinetuneError, match="longer than 30 s"):
        finetune(small, data, FinetuneConfig(epochs=1))
    sf.write(data / "b.wav", _clip(1), 16000)
    (data / "b.txt").write_text("short")
    notes = []
    with pytest.raises(AssertionError, match="work started"):  # the long clip skipped, the short one goes on
        finetune(small, data, FinetuneConfig(epochs=1), progress=lambda d, t, m: notes.append(m))
    assert any(m.startswith("note: skipped 1 labelled clip(s) over 30 s (a)") for m in notes)


def test_an_out_folder_with_other_files_is_refused_before_any_work(whisper_pair, tmp_path, monkeypatch):
    _, small = whisper_pair
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    monkeypatch.setattr(ft_module, "load_training_data", lambda *a, **k: pytest.fail("data read before the check"))
    with pytest.raises(SaveError, match="not a model saved by prunelab"):
        finetune(small, tmp_path, FinetuneConfig(epochs=1), out=out)
    assert (out / "thesis.tex").read_text() == "precious"


def test_an_out_folder_of_another_run_is_refused(whisper_pair, tmp_path, no_work):
    _, small = whisper_pair
    data = _folder(tmp_path / "data", {"a": "hello"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "finetune.json").write_text(json.dumps({"run": {"model": "somewhere else"}, "labels": None}))
    with pytest.raises(SaveError, match="fine-tune in progress of another run"):
        finetune(small, data, FinetuneConfig(epochs=1), out=out)


def test_an_uncompressed_model_and_bad_settings_are_refused(whisper_pair, tmp_path, no_work):
    original, small = whisper_pair
    data = _folder(tmp_path / "data", {"a": "hello"})
    with pytest.raises(FinetuneError, match="not compressed"):
        finetune(original, data, FinetuneConfig(epochs=1))
    with pytest.raises(FinetuneError, match="train must be one of compressed, all, lora"):
        finetune(small, data, FinetuneConfig(train="everything"))
    with pytest.raises(FinetuneError, match="epochs must be a number > 0"):
        finetune(small, data, FinetuneConfig(epochs=0))
    vocab_only = compress(original, CompressionConfig(method="kmeans", sparsity=0.0, vocabulary="ascii"))
    with pytest.raises(FinetuneError, match="replaced no layers"):
        finetune(vocab_only, data, FinetuneConfig(epochs=1))


def test_cli_finetune_saves_a_model_and_refuses_a_folder_prunelab_did_not_save(tmp_path, capsys):
    from prunelab.cli import main

    data = _folder(tmp_path / "data", {"a": "hello world"})
    assert main(["compress", "--model", "tiny:whisper", "--method", "kmeans", "--sparsity", "0.5", "--preset",
                 "encoder-fc1", "--out", str(tmp_path / "small")]) == 0
    capsys.readouterr()
    assert main(["finetune", str(data), "--data", str(data), "--out", str(tmp_path / "x")]) == 2
    assert "is not a model saved by prunelab" in capsys.readouterr().err
    assert main(["finetune", str(tmp_path / "small"), "--data", str(data), "--epochs", "1", "--out",
                 str(tmp_path / "tuned"), "--batch-size", "1"]) == 0
    captured = capsys.readouterr()
    assert "saved to" in captured.out and "[1/1] epoch 1.00/1, loss" in captured.err
    assert load_model(str(tmp_path / "tuned")).compression["recovery"][-1]["clips"] == 1
