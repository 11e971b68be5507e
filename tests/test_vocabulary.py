"""Vocabulary trimming: which tokens a script keeps, the trimmed embedding/logits pair, and the whole path
(compress, save/load, eval rows, CLI) on the tiny Whisper with the real tokenizer; the real Whisper-base
transcribes the example clips exactly as before with the Latin vocabulary (slow)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prunelab import cli
from prunelab.compression import CompressionConfig, compress
from prunelab.compression.vocabulary import in_script, kept_tokens, token_bytes
from prunelab.errors import PlanError
from prunelab.models.saved import load_compressed, save_compressed
from prunelab.speech.evaluate import evaluate, grid
from prunelab.speech.data import load_eval_set
from prunelab.vocabulary import TrimmedEmbedding, TrimmedLogits, trimmed_pair

CLIPS = sorted((Path(__file__).resolve().parents[1] / "assets").glob("clip*.wav"))


class FakeTokenizer:
    """Byte-level BPE pieces as GPT-2/Whisper write them (space = 'Ġ', é = 'Ã©', α = 'Î±')."""

    pieces = ["a", "Ġthe", "Ã©", "cafÃ©", "Î±", "cafÃ", "Ã", "!", "<|endoftext|>", "<|en|>"]
    added_tokens_decoder = {8: "<|endoftext|>", 9: "<|en|>"}
    all_special_ids = [8]

    def convert_ids_to_tokens(self, ids):
        return [self.pieces[i] for i in ids]


def test_token_bytes_reads_byte_level_pieces():
    assert token_bytes("Ġthe") == b" the"
    assert token_bytes("Ã©").decode() == "é"
    assert token_bytes("two words") is None  # a space is not in the byte-level alphabet (it is written Ġ)
    assert in_script("café", "latin") and not in_script("café", "ascii") and not in_script("α", "latin")


@pytest.mark.parametrize("script, expected", [
    ("latin", [0, 1, 2, 3, 6, 7, 8, 9]),  # é words kept; α and the fragment 'caf\xc3' removed; single bytes stay
    ("ascii", [0, 1, 6, 7, 8, 9]),        # 'é' and 'café' removed; é stays writable byte by byte ('Ã' is kept)
])
def test_kept_tokens_by_script(script, expected):
    assert kept_tokens(FakeTokenizer(), script, len(FakeTokenizer.pieces)).tolist() == expected


def test_unknown_script_is_refused_with_the_choices():
    with pytest.raises(PlanError, match="latin, ascii"):
        CompressionConfig(sparsity=0.1, vocabulary="greek")


def test_trimmed_pair_matches_the_original_rows_and_masks_the_rest():
    torch.manual_seed(0)
    weight = torch.randn(20, 8)
    keep = torch.tensor([0, 3, 4, 11, 19])
    emb, logits = trimmed_pair(weight, keep)
    assert isinstance(emb, TrimmedEmbedding) and isinstance(logits, TrimmedLogits)
    assert logits.weight is emb.weight and emb.weight.shape == (5, 8)
    ids = torch.tensor([[3, 19, 5]])
    out = emb(ids)
    assert torch.equal(out[0, 0], weight[3]) and torch.equal(out[0, 1], weight[19])
    assert torch.equal(out[0, 2], torch.zeros(8))  # a removed token embeds as zeros
    h = torch.randn(2, 3, 8)
    full = h @ weight.T
    got = logits(h)
    assert got.shape == (2, 3, 20)
    assert torch.allclose(got[..., keep], full[..., keep])
    removed = torch.ones(20, dtype=torch.bool)
    removed[keep] = False
    assert torch.isinf(got[..., removed]).all() and (got[..., removed] < 0).all()
    assert bool(torch.isin(got.argmax(-1), keep).all())


@pytest.mark.parametrize("keep", [[3, 1], [0, 20], [], [2, 2]])
def test_trimmed_pair_refuses_bad_ids(keep):
    with pytest.raises(PlanError, match="sorted"):
        trimmed_pair(torch.randn(20, 4), torch.tensor(keep, dtype=torch.long))


def _decoder_logits(model, ids):
    feats = torch.randn(1, model.model.config.num_mel_bins, 3000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.model(input_features=feats, decoder_input_ids=ids).logits


def test_compress_trims_the_vocabulary_and_keeps_the_input(tiny_whisper, tmp_path):
    before = tiny_whisper.model.model.decoder.embed_tokens.weight.clone()
    small = compress(tiny_whisper, CompressionConfig(sparsity=0.1, preset="encoder-fc1", vocabulary="latin"))
    rec = small.compression["vocabulary"]
    V, D = before.shape
    assert rec["script"] == "latin" and rec["vocab_size"] == V and 40_000 < rec["kept"] < V
    # the original is untouched: still a full nn.Embedding tied to proj_out
    assert type(tiny_whisper.model.model.decoder.embed_tokens) is torch.nn.Embedding
    assert torch.equal(tiny_whisper.model.model.decoder.embed_tokens.weight, before)
    assert tiny_whisper.model.proj_out.weight is tiny_whisper.model.model.decoder.embed_tokens.weight
    # params_removed counts the removed rows once (embedding and logits share them) beside the fc1 fold
    no_vocab = compress(tiny_whisper, CompressionConfig(sparsity=0.1, preset="encoder-fc1"))
    total = sum(p.numel() for p in tiny_whisper.model.parameters())
    extra = small.compression["params_removed"] - no_vocab.compression["params_removed"]
    assert extra == pytest.approx((V - rec["kept"]) * D / total)
    # the full model's logits: the uncompressed-vocabulary model's at kept ids, -inf elsewhere
    ids = torch.tensor([[50258, 50259, 50359, 50363, 264]])
    full, trimmed = _decoder_logits(no_vocab, ids), _decoder_logits(small, ids)
    kept = small.model.proj_out.ids
    assert torch.allclose(trimmed[..., kept], full[..., kept], atol=1e-5)
    assert int(torch.isinf(trimmed).sum(-1)[0, 0]) == V - rec["kept"]
    # saved and loaded back: the same module types and the same logits
    loaded = load_compressed(save_compressed(small, tmp_path / "m"))
    assert isinstance(loaded.model.proj_out, TrimmedLogits)
    assert loaded.model.proj_out.weight is loaded.model.model.decoder.embed_tokens.weight
    assert torch.equal(_decoder_logits(loaded, ids), trimmed)


def test_ctc_models_are_refused_before_any_work(tiny_ctc):
    calls = []
    with pytest.raises(PlanError, match="CTC"):
        compress(tiny_ctc, CompressionConfig(sparsity=0.1, vocabulary="latin"),
                 progress=lambda *a: calls.append(a))
    assert calls == []


def test_eval_rows_carry_the_vocabulary(tiny_whisper, tiny_data):
    cells = grid(["kmeans"], [0.1], ["encoder-fc1"], vocabulary="ascii")
    assert [c.vocabulary for c in cells] == [None, "ascii"] and "ascii vocabulary" in cells[1].label
    assert grid(["kmeans"], [0.1], ["encoder-fc1"])[1].key != cells[1].key
    rows = evaluate(tiny_whisper, load_eval_set(tiny_data), methods=["kmeans"], sparsities=[0.0],
                    preset="encoder-fc1", vocabulary="ascii")
    assert rows[1].vocabulary == "ascii" and rows[1].params_removed > 0.1
    assert rows[0].vocabulary is None and rows[0].params_removed == 0.0


def test_cli_compress_with_a_vocabulary(tmp_path, capsys):
    rc = cli.main(["compress", "--model", "tiny:whisper", "--sparsity", "0", "--vocabulary", "latin",
                   "--out", str(tmp_path / "m")])
    out = capsys.readouterr().out
    assert rc == 0 and "vocabulary latin: 43,007 of 51,865 decoder tokens kept" in out
    assert load_compressed(tmp_path / "m").compression["vocabulary"]["kept"] == 43_007


@pytest.mark.slow
def test_latin_vocabulary_keeps_whisper_base_transcripts(whisper_base):
    from prunelab.speech.transcribe import transcribe

    small = compress(whisper_base, CompressionConfig(sparsity=0.0, vocabulary="latin"))
    assert small.compression["params_removed"] == pytest.approx(0.0625, abs=0.001)
    for clip in CLIPS:
        assert transcribe(small, clip) == transcribe(whisper_base, clip)


@pytest.mark.parametrize("script", ["latin", "ascii"])
def test_vocabulary_savings_are_what_compress_removes(tiny_whisper, script):
    from prunelab.compression import vocabulary_savings

    savings = vocabulary_savings(tiny_whisper)
    assert set(savings) == {"latin", "ascii"} and savings["ascii"] > savings["latin"] > 0
    small = compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.0, vocabulary=script))
    assert savings[script] == pytest.approx(small.compression["params_removed"], rel=1e-12)


def test_vocabulary_savings_of_a_ctc_model_are_empty(tiny_ctc):
    from prunelab.compression import vocabulary_savings

    assert vocabulary_savings(tiny_ctc) == {}


def test_the_apps_vocabulary_choices_follow_the_loaded_model(tiny_whisper, tiny_ctc):
    from prunelab.compression import vocabulary_savings
    from ui.tabs.compress import vocabulary_radio

    radio = vocabulary_radio(tiny_whisper)
    labels = dict((v, l) for l, v in radio.choices)
    assert list(labels) == ["all", "latin", "ascii"] and radio.value == "all"
    for script, share in vocabulary_savings(tiny_whisper).items():
        assert labels[script].endswith(f"−{100 * share:.2f} % of this model")
    assert "Whisper-base" not in " ".join(labels.values())
    assert radio.interactive is True
    ctc = vocabulary_radio(tiny_ctc)
    assert ctc.value == "all" and ctc.interactive is False and "writes characters" in ctc.info
    assert all("Whisper only" in l for l, v in ctc.choices if v != "all")
