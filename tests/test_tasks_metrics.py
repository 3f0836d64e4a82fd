"""Task metrics against values computed by hand on tiny inputs."""
import math

import pytest

from fastrnn.tasks import metrics as M


def test_accuracy_and_token_accuracy():
    assert M.accuracy(["a", "b", "a"], ["a", "a", "a"]) == pytest.approx(2 / 3)
    assert math.isnan(M.accuracy([], []))
    # 2 of 2 right, then 1 of 3 right: 3 / 5
    assert M.token_accuracy([["O", "O"], ["B", "O", "I"]], [["O", "O"], ["B", "I", "O"]]) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="predicted"):
        M.token_accuracy([["O"]], [["O", "O"]])
    with pytest.raises(ValueError, match="predicted"):
        M.accuracy([1], [1, 2])


@pytest.mark.parametrize("tags, spans", [
    ([], []),
    (["O", "O"], []),
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["I-PER", "I-PER", "O"], [("PER", 0, 2)]),                  # I- without B- starts an entity
    (["O", "I-LOC"], [("LOC", 1, 2)]),
    (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),        # adjacent entities of one type
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),   # an I- of another type
    (["B-PER", "I-PER"], [("PER", 0, 2)]),                       # an entity at the very end
    (["NOUN", "B-X"], [("X", 1, 2)]),                            # a non-BIO tag counts as O
])
def test_bio_spans(tags, spans):
    assert M.bio_spans(tags) == spans


def test_entity_prf_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    # gold spans: PER(0,2) LOC(3,4) ORG(0,1) = 3; predicted PER(0,2) ORG(0,1) LOC(1,2) = 3; 2 right
    p, r, f1 = M.entity_prf(pred, gold)
    assert (p, r) == pytest.approx((2 / 3, 2 / 3)) and f1 == pytest.approx(2 / 3)
    # a boundary error is a miss: PER(0,1) != PER(0,2)
    assert M.entity_prf([["B-PER", "O"]], [["B-PER", "I-PER"]]) == (0.0, 0.0, 0.0)
    # conlleval prints 0 for an empty denominator (see test_conlleval for the full table)
    assert M.entity_prf([["O"]], [["O"]]) == (0.0, 0.0, 0.0)
    assert M.entity_prf([["B-X"]], [["O"]]) == (0.0, 0.0, 0.0)
    assert M.entity_prf([["O"]], [["B-X"]]) == (0.0, 0.0, 0.0)
    assert M.is_bio(["O", "B-PER", "I-LOC"]) and not M.is_bio(["O", "NOUN"]) and not M.is_bio(["B-"])


@pytest.mark.parametrize("a, b, d", [
    ("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3), ("flaw", "lawn", 2),
    ("abc", "abc", 0), ("ab", "ba", 2), (["HH", "AH0"], ["HH", "AH1", "L"], 2),
])
def test_edit_distance(a, b, d):
    assert M.edit_distance(a, b) == d == M.edit_distance(b, a)


def test_error_rates_and_exact_match():
    # CER: (3 + 0) / (7 + 2) for kitten->sitting and ab->ab
    assert M.error_rate(["kitten", "ab"], ["sitting", "ab"]) == pytest.approx(3 / 9)
    assert M.error_rate([["A", "B"]], [["A", "C", "D"]]) == pytest.approx(2 / 3)     # PER
    assert M.exact_match([[1, 2], [3]], [[1, 2], [4]]) == 0.5


def test_mae_rmse():
    assert M.mae([1, 2, 3], [1, 4, 0]) == pytest.approx(5 / 3)
    assert M.rmse([1, 2, 3], [1, 4, 0]) == pytest.approx(math.sqrt(13 / 3))
    with pytest.raises(ValueError, match="shape"):
        M.mae([[1, 2]], [1, 2])
