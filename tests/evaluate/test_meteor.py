"""METEOR through pycocoevalcap's jar: equal to pycocoevalcap's own Meteor, and a clear reason when it cannot run."""

import pytest

from datakit.evaluate import meteor
from tests.evaluate.test_nlg import HYPS, MULTI_REFS, REFS

SETUP = meteor.locate()


@pytest.mark.slow
@pytest.mark.skipif(not SETUP.available, reason=f"METEOR cannot run here: {SETUP.reason}")
def test_equal_to_pycocoevalcap_meteor():
    from pycocoevalcap.meteor.meteor import Meteor

    refs = REFS[:3] + MULTI_REFS[3:]  # one and several references
    gts, res = {i: list(r) for i, r in enumerate(refs)}, {i: [h] for i, h in enumerate(HYPS)}
    scorer = Meteor()
    want, want_each = scorer.compute_score(gts, res)
    del scorer
    got, got_each = meteor.meteor(HYPS, refs, SETUP)
    assert abs(want - got) < 1e-9
    assert max(abs(a - b) for a, b in zip(want_each, got_each, strict=True)) < 1e-9
    assert 0 < got < 1


def test_without_java_it_says_why_and_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no java on it
    setup = meteor.locate()
    assert not setup.available
    assert "no Java runtime" in setup.reason
    with pytest.raises(meteor.MeteorError) as err:
        meteor.meteor(["a"], [["a"]], setup)
    assert "default-jre-headless" in err.value.hint and "datakit[eval]" in err.value.hint


@pytest.mark.skipif(not SETUP.available, reason=f"METEOR cannot run here: {SETUP.reason}")
def test_a_jvm_that_cannot_start_is_an_error_with_its_message():
    with pytest.raises(meteor.MeteorError) as err:
        meteor.meteor(["a"], [["a"]], SETUP, memory="1k")  # too small a heap: the JVM refuses to start
    # the JVM prints why it cannot start where the scores should come
    assert "the METEOR jar answered" in str(err.value) or "stopped answering" in str(err.value)
    assert "java -version" in err.value.hint
