"""Fuzz cases of the ranks' agreement at the end of a distributed setup (fastrnn.distributed):
the facts' digests and the decision every rank takes from the gathered reports."""
import copy

import numpy as np
from hypothesis import strategies as st

from fastrnn import distributed as mpi
from test_distributed import FakeComm


_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80), st.sampled_from(["", "\n", "\ud800", "a" * 1000]),
    st.builds(lambda n, dt: np.arange(n).astype(dt), st.integers(0, 6), st.sampled_from(["i8", "f4", "u1", "?"])),
    st.sampled_from([np.zeros((2, 0)), np.array(["a", None], object), np.float32(1.5), np.arange(6)[::2]]),
    st.builds(object))


def setup_agreement(draw):
    """mpi.fact never fails, gives a one-line text and a digest of the content (a deep copy has
    the same); mpi.agree takes the same decision on every rank: all return (no rank failed, the
    same facts) or all raise SetupFailed with the same one-line message and exit status."""
    values = st.recursive(_LEAVES, lambda c: st.one_of(
        st.lists(c, max_size=4), st.tuples(c, c), st.dictionaries(st.text(max_size=4), c, max_size=3)),
        max_leaves=12)
    value = draw(values, "value")
    size = draw(st.one_of(st.none(), st.text(max_size=20)), "size")
    digest, text = mpi.fact(value, size)
    assert "\n" not in text and len(digest) == 64
    assert mpi.fact(copy.deepcopy(value), size)[0] == digest
    ranks = draw(st.integers(1, 4), "ranks")
    pool = [{}, {"x": mpi.fact(value)}, {"x": mpi.fact([value])}, {"x": mpi.fact(1), "y": mpi.fact("a")}]
    errors = st.one_of(st.none(), st.tuples(st.sampled_from(["bad file", "bad\nfile", ""]), st.integers(0, 3)))
    reports = [(draw(st.one_of(st.none(), st.none(), errors), f"error {r}"),
                pool[draw(st.integers(0, len(pool) - 1), f"facts {r}")]) for r in range(ranks)]
    outcomes = []
    for r in range(ranks):
        try:
            mpi.agree(FakeComm(r, reports), reports[r][1], reports[r][0])
            outcomes.append(None)
        except mpi.SetupFailed as e:
            assert e.rank == r
            outcomes.append((str(e), e.code, e.unanimous))
    assert all(o == outcomes[0] for o in outcomes), outcomes
    failed = any(e is not None for e, _ in reports)
    differ = any({k: v[0] for k, v in f.items()} != {k: v[0] for k, v in reports[0][1].items()}
                 for _, f in reports)
    assert (outcomes[0] is None) == (not failed and not differ), (reports, outcomes)
    if outcomes[0] is not None:
        assert "\n" not in outcomes[0][0]
        assert outcomes[0][1] == 2 if not failed else outcomes[0][1] in range(4)
