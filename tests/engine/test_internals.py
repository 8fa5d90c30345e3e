"""The private library APIs cellpick reaches: the version check and each wrapper's target."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from cellpick.engine import internals
from cellpick.engine.internals import SUPPORTED, UnsupportedVersionWarning, check_versions, unsupported


def test_the_supported_versions_pass_without_a_word():
    same = {"keras": "3.15.1", "keras-tuner": "1.4.8", "tensorflow": "2.21.0"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_versions(same) == []


def test_other_versions_are_named_with_the_supported_ones():
    other = {"keras": "3.16.0", "keras-tuner": "1.4.8", "tensorflow": "2.20.1"}
    with pytest.warns(UnsupportedVersionWarning) as caught:
        found = check_versions(other)
    assert found == ["keras 3.16.0 (supported 3.15.x)", "tensorflow 2.20.1 (supported 2.21.x)"]
    message = str(caught[0].message)
    assert "written for keras 3.15.x, keras-tuner 1.4.8, tensorflow 2.21.x" in message
    assert "installed: keras 3.16.0 (supported 3.15.x), tensorflow 2.20.1" in message


def test_a_prefix_is_a_whole_release_and_a_missing_library_is_left_out():
    assert unsupported({"keras": "3.150.0", "keras-tuner": "1.4.80"}) == [
        "keras 3.150.0 (supported 3.15.x)", "keras-tuner 1.4.80 (supported 1.4.8)"]
    assert unsupported({"keras": None, "tensorflow": "2.21"}) == []


def test_the_installed_versions_are_read_from_package_metadata():
    from importlib import metadata

    installed = {name: metadata.version(name) for name in SUPPORTED}
    assert unsupported() == unsupported(installed)


def test_importing_it_warns_once_when_a_version_differs():
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from importlib import metadata\n"
            "real = metadata.version\n"
            "metadata.version = lambda name: '9.9.9' if name == 'keras' else real(name)\n"
            "import cellpick.engine.internals, cellpick.engine.members, cellpick.engine.search\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.count("UnsupportedVersionWarning") == 1
    assert "keras 9.9.9 (supported 3.15.x)" in out.stderr


def test_every_wrapped_internal_is_there():
    """What an upgrade would break first: each private name the wrappers reach exists."""
    import keras

    assert internals.keras_tuner_utils().save_json is not None
    assert internals.keras_tuner_protos().get_service_grpc().OracleStub is not None
    assert isinstance(internals.oracle_servicer_class(), type)
    assert internals.keras_tuner_trial().TrialStatus.STOPPED
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    [node] = [n for nodes in internals.nodes_by_depth(model).values() for n in nodes
              if n.operation is not None and not n.is_input]
    x = np.ones((1, 3), "float32")
    np.testing.assert_allclose(internals.call_operation(node.operation, (x,), {}, False), model(x))
    assert internals.keras_mask(keras.ops.ones((1, 2))) is None
    keras.utils.set_random_seed(1)  # TensorFlow's context has its seed attributes from then on
    assert internals.seed_without_clearing_caches(3)
    mine = (np.random.random(), keras.random.uniform(()).numpy())
    keras.utils.set_random_seed(3)
    assert (np.random.random(), keras.random.uniform(()).numpy()) == mine
