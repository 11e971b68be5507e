"""The app's method-options box: defaults shown as JSON, typed options read back or refused readably."""
import json

import pytest

from prunelab.errors import PrunelabError
from ui.options import has_options, options_json, parse_options


def test_defaults_round_trip_for_every_method_with_options():
    assert has_options("kmeans-fold") and has_options("predictive") and not has_options("kmeans")
    assert json.loads(options_json("kmeans-fold")) == {"features": "fc1", "ln_gain": False, "merge": "sum",
                                                       "variance": False, "mean_shift": False, "ridge": 0.0,
                                                       "n_samples": 4096}
    assert options_json("kmeans") == "{}"
    for method in ("kmeans-fold", "predictive", "hybrid"):
        assert parse_options(method, options_json(method)) == json.loads(options_json(method))


def test_typed_options_are_read_or_refused_readably():
    assert parse_options("kmeans-fold", ' {"variance": true, "merge": "scale"} ') == {"variance": True,
                                                                                     "merge": "scale"}
    assert parse_options("kmeans-fold", "  ") == {}
    with pytest.raises(PrunelabError, match="not valid JSON"):
        parse_options("kmeans-fold", "{variance: true}")
    with pytest.raises(PrunelabError, match="JSON object like .*not a list"):
        parse_options("kmeans-fold", "[1, 2]")
    with pytest.raises(PrunelabError, match="has no option 'dead_ratio'.*features"):
        parse_options("kmeans-fold", '{"dead_ratio": 0.5}')  # left over from hybrid
    with pytest.raises(PrunelabError, match="merge must be one of sum, scale"):
        parse_options("kmeans-fold", '{"merge": "max"}')
