"""Entity precision/recall/F1 by conlleval's definitions, BIO and IOBES.

Expected values were worked out by hand with conlleval's rules (startOfChunk/endOfChunk, and
`precision = 100*correct/guessed if guessed > 0 else 0`, the same for recall and FB1).
"""
import pytest

from fastrnn.tasks import metrics as M


@pytest.mark.parametrize("tags, spans", [
    (["S-PER", "O", "B-LOC", "I-LOC", "E-LOC"], [("PER", 0, 1), ("LOC", 2, 5)]),
    (["B-X", "E-X", "E-X"], [("X", 0, 2), ("X", 2, 3)]),      # an E- after E- opens a chunk
    (["E-X"], [("X", 0, 1)]),                                  # E- after O starts one
    (["S-X", "I-X"], [("X", 0, 1), ("X", 1, 2)]),              # S- always closes
    (["S-X", "S-X"], [("X", 0, 1), ("X", 1, 2)]),
    (["B-X", "I-Y"], [("X", 0, 1), ("Y", 1, 2)]),              # a change of type
    (["B-X", "S-X", "E-X"], [("X", 0, 1), ("X", 1, 2), ("X", 2, 3)]),
])
def test_iobes_spans(tags, spans):
    assert M.bio_spans(tags) == spans == M.iobes_spans(tags)


@pytest.mark.parametrize("pred, gold, expected", [
    # 3 guessed, 3 gold, 2 correct: conlleval prints precision 66.67%, recall 66.67%, FB1 66.67
    ([["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]],
     [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]], (2 / 3, 2 / 3, 2 / 3)),
    # nothing predicted: 0 guessed -> precision 0.00%; recall 0/1; FB1 0
    ([["O", "O"]], [["B-X", "O"]], (0.0, 0.0, 0.0)),
    # nothing gold: precision 0/1, recall 0.00% (0 gold), FB1 0
    ([["B-X"]], [["O"]], (0.0, 0.0, 0.0)),
    # nothing either side: conlleval prints 0.00% 0.00% 0.00
    ([["O", "O"], []], [["O", "O"], []], (0.0, 0.0, 0.0)),
    # an I- without B- is a chunk that matches B- I-: 1 of 1
    ([["I-PER", "I-PER"]], [["B-PER", "I-PER"]], (1.0, 1.0, 1.0)),
    # IOBES: gold PER(0,1) LOC(2,5); guessed PER(0,1) LOC(2,4): 1 of 2 each way
    ([["S-PER", "O", "B-LOC", "E-LOC", "O"]], [["S-PER", "O", "B-LOC", "I-LOC", "E-LOC"]], (0.5, 0.5, 0.5)),
    # 1 correct of 4 guessed and 2 gold: P 25%, R 50%, FB1 2*.25*.5/.75 = 33.33
    ([["B-A", "B-A", "B-A", "B-A"]], [["B-A", "O", "B-B", "I-B"]], (0.25, 0.5, 1 / 3)),
])
def test_entity_prf_as_conlleval(pred, gold, expected):
    assert M.entity_prf(pred, gold) == pytest.approx(expected)


def test_scheme_detection():
    assert M.is_iobes(["O", "S-X", "E-Y"]) and not M.is_bio(["S-X"])
    assert M.is_entity_tags(["B-X", "I-X", "O"]) and M.is_entity_tags(["S-X", "E-X"])
    assert not M.is_entity_tags(["NOUN"]) and not M.is_iobes(["E-"])
