"""The trace schema module: validation paths agree, nothing mutates the shared schema, rendering is well-formed."""

import copy
import json

from datakit.trace import is_valid, part_schema, render_assistant, schema_errors, trace_schema

TRACE = {
    "perception": [{"region": "pleura", "finding": "pleural_effusion", "status": "present", "laterality": "left",
                    "severity": "small", "evidence": "Blunted left costophrenic angle."}],
    "reasoning": [{"observation": "Blunted angle", "inference": "Pleural fluid [K:pleural_effusion].",
                   "knowledge": ["pleural_effusion"], "conclusion": "pleural_effusion", "status": "present"}],
    "reflection": {"checked": ["both angles"], "corrections": [], "summary": "Holds."},
    "report": {"findings": "Small left effusion.", "impression": "Effusion."},
}


def test_fast_and_readable_validation_agree():
    assert is_valid(TRACE) and schema_errors(TRACE) == []
    bad = copy.deepcopy(TRACE)
    bad["perception"][0]["status"] = "maybe"
    del bad["reflection"]["checked"]
    assert not is_valid(bad)
    errors = schema_errors(bad)
    assert any("perception/0/status" in e for e in errors) and any("checked" in e for e in errors)


def test_validating_does_not_change_the_shared_schema():
    before = json.dumps(trace_schema(), sort_keys=True)
    is_valid(TRACE)
    is_valid({"perception": TRACE["perception"]}, ("perception",))
    assert json.dumps(trace_schema(), sort_keys=True) == before
    assert "$ref" in json.dumps(part_schema(("perception",)))


def test_render_has_one_think_block_then_the_report():
    text = render_assistant(TRACE)
    assert text.startswith("<think>\n") and text.count("</think>") == 1
    assert text.index("Perception:") < text.index("Reasoning:") < text.index("Reflection:") < text.index("</think>")
    assert text.endswith("FINDINGS: Small left effusion.\n\nIMPRESSION: Effusion.")
    assert "Pleura:" in text
    tags = ("<|begin_of_thought|>", "<|end_of_thought|>")
    assert render_assistant(TRACE, tags=tags).startswith("<|begin_of_thought|>")
