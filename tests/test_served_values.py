"""Served values are bit-identical to those recorded before the interface changed (tests/data/served).

``tests/data/served/make_reference.py`` trained two small models and recorded what they served on fixed inputs
(a grid model on the shared MNIST file, a point-cloud model on synthetic shapes). Any change of the serving
code must load those model files and give the same arrays, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import MNIST_IMAGES
from .data.served.make_reference import HERE, served

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _check(got: dict, path) -> None:
    with np.load(path) as z:
        want = {k: z[k] for k in z.files}
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.skipif(not MNIST_IMAGES.exists(), reason="the shared MNIST file is not next to this clone")
def test_the_mnist_model_serves_what_it_served():
    import wassembed as we

    W = we.load_dataset(str(MNIST_IMAGES), limit=700).weights
    model = we.load(HERE / "mnist-model")
    _check(served(model, W[600:620], W[620:640], W[640:700], W[600:604], clouds=False), HERE / "expected-mnist.npz")


def test_the_point_cloud_model_serves_what_it_served():
    import wassembed as we
    from wassembed.data import make_shapes

    shapes = make_shapes(160, seed=0, min_points=12, max_points=30)
    model = we.load(HERE / "clouds-model")
    X, Y, R = shapes.subset(range(120, 130)), shapes.subset(range(130, 140)), shapes.subset(range(140, 160))
    _check(served(model, X, Y, R, shapes.subset(range(120, 123)), clouds=True), HERE / "expected-clouds.npz")
