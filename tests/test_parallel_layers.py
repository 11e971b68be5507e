"""Layers compressed side by side (prunelab.compression.parallel): same results as one at a time, really
concurrent, errors and progress in order, torch's thread count and grad mode handled."""
import threading

import pytest
import torch

from prunelab.compression import CompressionConfig, compress
from prunelab.compression.parallel import PARALLEL_MIN_PARAMS, check_threads, default_threads, map_layers
from prunelab.errors import PlanError


def _state(sm):
    return {k: v.clone() for k, v in sm.model.state_dict().items()}


@pytest.mark.parametrize("fixture, config", [
    ("tiny_whisper", CompressionConfig(method="kmeans", sparsity=0.3)),
    ("tiny_whisper", CompressionConfig(method="predictive", sparsity=0.25, preset="ffn", units="foldable")),
    ("tiny_ctc", CompressionConfig(method="kmeans", sparsity=0.4, units="foldable", preset="uniform")),
])
def test_two_threads_give_the_same_model_as_one(request, fixture, config):
    sm = request.getfixturevalue(fixture)
    calls = {1: [], 2: []}
    one = compress(sm, config, threads=1, progress=lambda i, n, m: calls[1].append((i, n, m)))
    two = compress(sm, config, threads=2, progress=lambda i, n, m: calls[2].append((i, n, m)))
    a, b = _state(one), _state(two)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    rec1, rec2 = dict(one.compression), dict(two.compression)
    d1, d2 = rec1.pop("distortion"), rec2.pop("distortion")
    assert rec1 == rec2
    # (a float64 sum may round differently with one torch thread than with two: last digit only)
    assert d1.keys() == d2.keys() and all(d2[k] == pytest.approx(d1[k], rel=1e-9) for k in d1)
    assert calls[1] == calls[2]  # the same messages, in layer order, ending with "done"
    assert [c[0] for c in calls[2]] == list(range(len(calls[2])))
    assert calls[2][-1][2] == "done"


def test_default_is_two_layers_at_once_for_big_models_on_a_two_thread_cpu_and_one_elsewhere():
    big, small = PARALLEL_MIN_PARAMS, PARALLEL_MIN_PARAMS - 1
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert default_threads(torch.device("cpu"), big) == 1
        torch.set_num_threads(2)
        assert default_threads(torch.device("cpu"), big) == 2
        assert default_threads(torch.device("cpu"), small) == 1
        torch.set_num_threads(8)
        assert default_threads(torch.device("cpu"), big) == 2
    finally:
        torch.set_num_threads(saved)
    assert default_threads(torch.device("meta"), big) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_thread_counts_are_refused(tiny_whisper, bad):
    with pytest.raises(PlanError, match="threads must be a whole number"):
        check_threads(bad)
    with pytest.raises(PlanError, match="threads must be a whole number"):
        compress(tiny_whisper, CompressionConfig(method="kmeans", sparsity=0.2), threads=bad)


def test_items_really_run_at_the_same_time():
    both = threading.Barrier(2, timeout=10)  # one at a time, the first item would wait until the timeout

    def meet(x):
        both.wait()
        return x * 10

    assert list(map_layers(meet, [1, 2], threads=2)) == [10, 20]


def test_results_and_start_calls_come_in_order_with_one_torch_thread_per_worker():
    saved = torch.get_num_threads()
    seen, started = [], []

    def work(x):
        seen.append(torch.get_num_threads())
        return x * x

    try:
        torch.set_num_threads(2)  # (the caller's setting, which workers must not inherit)
        out = list(map_layers(work, list(range(7)), threads=2, on_start=started.append))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)
    assert out == [x * x for x in range(7)]
    assert started == list(range(7))
    assert seen == [1] * 7


def test_workers_run_in_the_callers_grad_mode():
    def mode(_):
        return torch.is_grad_enabled()

    with torch.no_grad():
        assert list(map_layers(mode, [0, 1], threads=2)) == [False, False]
    assert list(map_layers(mode, [0, 1], threads=2)) == [True, True]


def test_an_error_is_raised_in_the_caller_and_later_items_are_not_started():
    ran = []
    gate = threading.Event()

    def work(x):
        ran.append(x)
        if x == 0:
            raise PlanError("layer 0 is impossible")
        gate.wait(10)  # item 1 holds the other worker until the error has been seen
        return x

    saved = torch.get_num_threads()
    results = map_layers(work, list(range(20)), threads=2)
    with pytest.raises(PlanError, match="layer 0 is impossible"):
        try:
            next(results)
        finally:
            gate.set()
            results.close()
    assert len(ran) < 20
    assert torch.get_num_threads() == saved


def test_one_thread_runs_in_the_calling_thread():
    callers = list(map_layers(lambda _: threading.current_thread(), [0, 1, 2], threads=1))
    assert callers == [threading.current_thread()] * 3
