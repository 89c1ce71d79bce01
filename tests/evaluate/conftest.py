import csv
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Reference reports as the export renders them, and predictions of a pretend model
REFERENCES = {
    "s1": "FINDINGS: The heart size is normal. There is a small left pleural effusion.\n\n"
    "IMPRESSION: Small left pleural effusion.",
    "s2": "FINDINGS: Lungs are clear. No pneumothorax.\n\nIMPRESSION: No acute cardiopulmonary process.",
    "s3": "FINDINGS: Moderate cardiomegaly with mild pulmonary edema.\n\n"
    "IMPRESSION: Cardiomegaly and mild edema. Possible left basilar atelectasis.",
    "s4": "IMPRESSION: Right lower lobe consolidation concerning for pneumonia.",
}
PREDICTIONS = {
    "s1": "FINDINGS: Heart size is normal. Small left pleural effusion.\n\nIMPRESSION: Small left pleural effusion.",
    "s2": "FINDINGS: The lungs are clear.\n\nIMPRESSION: No acute process.",
    "s3": "FINDINGS: Mild cardiomegaly. No edema.\n\nIMPRESSION: Mild cardiomegaly without edema.",
    "s5": "IMPRESSION: Normal chest.",
}
TAGS = {"think": ("<think>\n", "\n</think>\n\n"), "thought": ("<|begin_of_thought|>\n", "\n<|end_of_thought|>\n\n"),
        "none": ("", "")}


def trl_row(study_id: str, report: str, tags: str = "think") -> dict:
    """One line of a trl export split file (the export contract), the think block before the report."""
    think = "Perception:\n- lungs: clear\n\nReasoning:\n- x → y\n\nReflection:\n- Re-checked: lungs."
    assistant: dict = {"role": "assistant"}
    if tags == "reasoning_content":
        assistant.update(reasoning_content=think, content=[{"type": "text", "text": report}])
    else:
        opening, closing = TAGS[tags]
        text = f"{opening}{think}{closing}{report}" if opening else report
        assistant["content"] = [{"type": "text", "text": text}]
    return {
        "study_id": study_id,
        "images": [f"/data/{study_id}/frontal.png"],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "You are an expert radiologist."}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Write the report."}]},
            assistant,
        ],
    }


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def prediction_row(study_id: str, report: str) -> dict:
    return {"study_id": study_id, "think": "Perception: ...", "report": report,
            "generation": {"max_new_tokens": 512, "do_sample": False, "num_beams": 1}}


@pytest.fixture
def datakit_files(tmp_path):
    """A predictions JSONL (with one broken line) and a trl split file, as predict and export write them."""
    preds = write_jsonl(tmp_path / "predictions.jsonl",
                        [prediction_row(k, v) for k, v in PREDICTIONS.items()] + ["{not json"])
    refs = write_jsonl(tmp_path / "test.jsonl", [trl_row(k, v) for k, v in REFERENCES.items()])
    return preds, refs


def write_r2gen_csv(path: Path, reports: list[str]) -> Path:
    """A headerless one-column CSV as pandas' to_csv(index=False, header=False) writes it."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        for r in reports:
            writer.writerow([r])
    return path


@pytest.fixture(scope="module")
def ingested_run(tmp_path_factory) -> Path:
    """A run directory with the demo data ingested (studies table only matters here)."""
    import datakit.ingest
    from datakit.config import load_config

    dest = tmp_path_factory.mktemp("eval-run") / "run"
    cfg = load_config(overrides={"ingest.images.max_size": 64})
    datakit.ingest.run(REPO / "examples" / "demo" / "mimic-cxr", dest, cfg)
    return dest
