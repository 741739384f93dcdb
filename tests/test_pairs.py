import numpy as np
import pytest

from wassembed.errors import InputError
from wassembed.exact._pairs import (
    all_pairs,
    block_pairs,
    cross_pairs,
    parse_range,
    random_pairs,
    read_pairs_file,
    sparse_pairs,
)


def _check(i, j):
    assert (i < j).all()
    assert len(set(zip(i.tolist(), j.tolist()))) == i.size


def test_random_pairs_distinct_deterministic_prefix_stable():
    i, j = random_pairs(np.arange(100), 500, seed=3)
    _check(i, j)
    i2, j2 = random_pairs(np.arange(100), 500, seed=3)
    assert (i == i2).all() and (j == j2).all()
    i3, j3 = random_pairs(np.arange(100), 200, seed=3)
    assert (i3 == i[:200]).all() and (j3 == j[:200]).all()
    big_i, big_j = random_pairs(np.arange(6000), 14000, seed=0)  # plans larger than one round of draws
    more_i, more_j = random_pairs(np.arange(6000), 34000, seed=0)
    assert (more_i[:14000] == big_i).all() and (more_j[:14000] == big_j).all()
    assert not (random_pairs(np.arange(100), 500, seed=4)[0] == i).all()


def test_random_pairs_can_take_every_pair():
    i, j = random_pairs(np.arange(10), 45, seed=0)
    _check(i, j)
    assert i.size == 45


def test_block_pairs_share_images_and_stay_in_range():
    idx = np.arange(100, 300)
    i, j = block_pairs(idx, 3000, block_size=20, seed=0)
    _check(i, j)
    assert i.min() >= 100 and j.max() < 300
    first = np.unique(np.r_[i[:190], j[:190]])  # the first group: all 190 pairs of 20 images
    assert first.size == 20


def test_sparse_pairs_few_partners_inside_groups_every_image_prefix_stable():
    idx = np.arange(100, 300)
    i, j = sparse_pairs(idx, 390, block_size=20, partners=2, seed=0)
    _check(i, j)
    assert i.min() >= 100 and j.max() < 300
    assert np.unique(np.r_[i, j]).size == 200  # one round already meets every image (blocks: 20 per group)
    first = np.unique(np.r_[i[:30], j[:30]])  # the first group's pairs stay inside its 20 images
    assert first.size <= 20
    deg = np.bincount(np.r_[i, j] - 100, minlength=200)
    assert deg.max() <= 4 * 2 and np.median(deg) <= 5  # a few partners each, not the whole group
    more_i, more_j = sparse_pairs(idx, 3000, block_size=20, partners=2, seed=0)
    assert (more_i[:390] == i).all() and (more_j[:390] == j).all()
    with pytest.raises(InputError, match="partners"):
        sparse_pairs(idx, 10, partners=0)


def test_train_test_ranges_never_mix():
    tr = random_pairs(parse_range("0:60", 100), 300, seed=0)
    te = random_pairs(parse_range("60:100", 100), 300, seed=0)
    assert np.r_[tr[0], tr[1]].max() < 60 and np.r_[te[0], te[1]].min() >= 60


def test_cross_and_all_pairs():
    i, j = cross_pairs([0, 1], [1, 2, 3])
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3)]
    i, j = cross_pairs(np.arange(5), np.arange(5, 10), 7, seed=1)
    _check(i, j)
    assert i.size == 7 and (i < 5).all() and (j >= 5).all()
    assert all_pairs([3, 1, 2])[0].tolist() == [1, 1, 2]


@pytest.mark.parametrize("spec, match", [
    ("5:2", r"out of bounds.*0 <= A < B <= 10"), ("0:11", "out of bounds"), ("a:b", "bad index range"),
    ("3", "bad index range"), ("-1:4", "out of bounds"),
])
def test_bad_ranges(spec, match):
    with pytest.raises(InputError, match=match):
        parse_range(spec, 10)


def test_too_many_pairs():
    with pytest.raises(InputError, match=r"larger than the number of distinct pairs.*at most 45 distinct pairs among"):
        random_pairs(np.arange(10), 46)
    with pytest.raises(InputError, match="at most 45"):
        block_pairs(np.arange(10), 46)
    with pytest.raises(InputError, match=r"bad pairs: expected a positive number.*received 0"):
        random_pairs(np.arange(10), 0)
    with pytest.raises(InputError, match=r"bad block_size: expected an integer >= 2"):
        block_pairs(np.arange(10), 5, block_size=1)


def test_pairs_files(tmp_path):
    np.save(tmp_path / "p.npy", np.array([[3, 1], [1, 3], [0, 2]]))
    i, j = read_pairs_file(tmp_path / "p.npy", 5)
    assert i.tolist() == [1, 0] and j.tolist() == [3, 2]
    (tmp_path / "p.txt").write_text("# i j\n0 1\n2,4\n")
    assert read_pairs_file(tmp_path / "p.txt", 5)[1].tolist() == [1, 4]
    (tmp_path / "bad.txt").write_text("0 9\n")
    with pytest.raises(InputError, match=r"out of range.*\(0, 9\) at row 0"):
        read_pairs_file(tmp_path / "bad.txt", 5)
    (tmp_path / "self.txt").write_text("2 2\n")
    with pytest.raises(InputError, match="self-pair"):
        read_pairs_file(tmp_path / "self.txt", 5)
