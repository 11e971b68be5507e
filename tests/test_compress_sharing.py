"""compress() shares every tensor it does not change with the original, and still never modifies it."""
import torch

from prunelab import CompressionConfig, compress, find_layers


def test_unchanged_tensors_share_storage_and_replaced_ones_do_not(tiny_whisper):
    small = compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.5, preset="encoder-fc1"))
    orig, new = tiny_whisper.model.state_dict(), small.model.state_dict()
    touched = {n for name in small.compression["modules"] for n in new if n.startswith(name + ".")}
    assert touched  # the fc1/fc2 pairs were replaced
    for key, tensor in new.items():
        if key in touched:
            assert tensor.data_ptr() != orig[key].data_ptr()
        else:
            assert tensor.data_ptr() == orig[key].data_ptr(), key
    fc1 = next(l for l in find_layers(tiny_whisper.model) if l.kind == "fc1")
    assert type(tiny_whisper.model.get_submodule(fc1.name)) is torch.nn.Linear
    assert tiny_whisper.model.get_submodule(fc1.name).out_features == fc1.channels  # the original keeps its layer


def test_moving_the_copy_leaves_the_original_in_place(tiny_whisper):
    before = {k: v.clone() for k, v in tiny_whisper.model.state_dict().items()}
    small = compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.3, preset="foldable", units="foldable"))
    small.model.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in small.model.parameters())
    after = tiny_whisper.model.state_dict()
    assert all(after[k].dtype == torch.float32 and torch.equal(after[k], v) for k, v in before.items())
    assert all(type(m).__name__ != "VariableWidthWhisperAttention" for m in tiny_whisper.model.modules())
