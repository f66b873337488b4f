import tracemalloc

import numpy as np
import pytest

from fewshot.setfit._pairs import sample_pairs


def as_set(pairs):
    return {(min(a, b), max(a, b), t) for a, b, t in zip(pairs.first, pairs.second, pairs.target)}


@pytest.mark.parametrize("y", [[0] * 4 + [1] * 6 + [2] * 3, list("aabbbbcc")])
def test_labels_of_pairs_are_right_and_no_self_pairs(y):
    y = np.asarray(y)
    pairs = sample_pairs(y, n_iterations=5, random_state=0)
    assert np.all((y[pairs.first] == y[pairs.second]) == (pairs.target == 1.0))
    assert np.all(pairs.first != pairs.second)


def test_counts_follow_the_parameters():
    y = np.array([0] * 4 + [1] * 6)  # 6 + 15 = 21 positive pairs, 24 negative
    assert len(sample_pairs(y, n_iterations=3, random_state=0)) == 2 * 3 * 10
    unique = sample_pairs(y, n_iterations=None, sampling="unique", random_state=0)
    assert len(unique) == 45 and len(as_set(unique)) == 45
    assert int(unique.target.sum()) == 21
    under = sample_pairs(y, n_iterations=None, sampling="undersampling", random_state=0)
    assert len(under) == 42 and int(under.target.sum()) == 21
    over = sample_pairs(y, n_iterations=None, sampling="oversampling", random_state=0)
    assert len(over) == 48 and int(over.target.sum()) == 24
    capped = sample_pairs(y, n_iterations=20, max_pairs=11, random_state=0)
    assert len(capped) == 11 and int(capped.target.sum()) == 5


def test_every_unique_pair_is_drawn_before_any_repeats():
    y = np.array([0] * 3 + [1] * 3)  # 6 positive, 9 negative pairs
    pairs = sample_pairs(y, n_iterations=None, sampling="oversampling", random_state=3)
    positives = [(a, b) for a, b, t in zip(pairs.first, pairs.second, pairs.target) if t == 1]
    assert len(positives) == 9 and len(set(positives)) == 6  # all 6 once, then 3 repeats


def test_random_state_decides_the_pairs():
    y = np.repeat(np.arange(4), 10)
    a = sample_pairs(y, n_iterations=2, random_state=1)
    b = sample_pairs(y, n_iterations=2, random_state=1)
    c = sample_pairs(y, n_iterations=2, random_state=2)
    np.testing.assert_array_equal(a.first, b.first)
    np.testing.assert_array_equal(a.second, b.second)
    assert not np.array_equal(a.first, c.first)


def test_memory_does_not_grow_with_n_squared():
    n = 200_000  # all pairs would be 2e10 (hundreds of GB); drawing 4e5 needs a few MB
    y = np.repeat([0, 1], n // 2)
    tracemalloc.start()
    pairs = sample_pairs(y, n_iterations=1, random_state=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(pairs) == 2 * n
    assert peak < 100 * 2**20
    assert np.all((y[pairs.first] == y[pairs.second]) == (pairs.target == 1.0))


def test_multilabel_pairs_share_a_label_or_not():
    Y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 1]])
    pairs = sample_pairs(Y, n_iterations=None, sampling="unique", random_state=0)
    assert len(pairs) == 15 and len(as_set(pairs)) == 15
    shares = (Y[pairs.first] & Y[pairs.second]).any(axis=1)
    np.testing.assert_array_equal(shares, pairs.target == 1.0)
    assert len(sample_pairs(Y, n_iterations=4, random_state=0)) == 2 * 4 * 6


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sampling": "random"}, "sampling='random'"),
        ({"n_iterations": 0}, "n_iterations must be a positive int"),
        ({"max_pairs": 1}, "max_pairs must be an int >= 2"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_pairs([0, 0, 1, 1], **kwargs)


def test_self_pairs_add_each_text_once_as_a_positive():
    y = np.array([0] * 3 + [1] * 4)  # 3 + 6 pairs of two texts, 7 of a text with itself
    pairs = sample_pairs(y, n_iterations=None, sampling="unique", self_pairs=True, random_state=0)
    positives = [(a, b) for a, b, t in zip(pairs.first, pairs.second, pairs.target) if t == 1]
    assert len(positives) == 16 and len(set(positives)) == 16
    assert sorted(a for a, b in positives if a == b) == list(range(7))
    assert len(pairs) - len(positives) == 12  # the negatives are as without self-pairs
    assert np.all((y[pairs.first] == y[pairs.second]) == (pairs.target == 1.0))


def test_multilabel_self_pairs_only_for_texts_with_a_label():
    Y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    kwargs = dict(n_iterations=None, sampling="unique", random_state=0)
    with_selves = as_set(sample_pairs(Y, self_pairs=True, **kwargs))
    without = as_set(sample_pairs(Y, **kwargs))
    assert with_selves - without == {(0, 0, 1.0), (1, 1, 1.0), (2, 2, 1.0)}
    assert without <= with_selves
