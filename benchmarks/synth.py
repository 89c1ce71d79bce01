"""A full-scale, MIMIC-shaped synthetic dataset for benchmarks (no real data; every sentence written here).

    python benchmarks/synth.py OUT_DIR [--studies 227835] [--images 377110]

makes ``OUT_DIR/files/p1X/pNNNNNNNN/sNNNNNNNN.txt`` reports in the real text layout (wrapped at 79 characters,
each line starting with one space, ``___`` placeholders, the usual headers, some reports without FINDINGS or
IMPRESSION), empty image files in each study folder (``--image-bytes 0``), and the four CSVs of
MIMIC-CXR-JPG (metadata, split, chexpert, negbio; gzipped). Labels agree with the sentences chosen.

``report_texts(n, seed)`` returns report texts alone, for benchmarks that only need text.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import random
import textwrap
import time
from pathlib import Path

LABEL_NAMES = [
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
    "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
    "Pneumothorax", "Support Devices",
]

# label → (positive sentences, negative sentences, uncertain sentences); {side} is filled at random
BANK: dict[str, tuple[list[str], list[str], list[str]]] = {
    "Pleural Effusion": (
        ["There is a small {side} pleural effusion.", "Moderate {side} pleural effusion is again seen.",
         "Layering {side} effusion with adjacent opacity.", "Blunting of the {side} costophrenic angle "
         "reflects a small effusion."],
        ["No pleural effusion.", "There is no pleural effusion or pneumothorax.", "No large effusion is seen."],
        ["Possible small {side} pleural effusion.", "Trace {side} effusion cannot be excluded."],
    ),
    "Pneumothorax": (
        ["Small {side} apical pneumothorax is present.", "There is a {side} pneumothorax, new from prior."],
        ["No pneumothorax.", "There is no pneumothorax.", "No evidence of pneumothorax."],
        ["A tiny {side} apical pneumothorax is questioned."],
    ),
    "Cardiomegaly": (
        ["The heart is mildly enlarged.", "Moderate cardiomegaly is unchanged.", "Stable cardiomegaly."],
        ["Heart size is normal.", "The cardiac silhouette is within normal limits."],
        ["Heart size is difficult to assess given low lung volumes."],
    ),
    "Edema": (
        ["Mild pulmonary edema.", "Interstitial edema has increased.", "Findings are compatible with "
         "moderate pulmonary edema."],
        ["No pulmonary edema.", "There is no evidence of edema."],
        ["Possible mild interstitial edema."],
    ),
    "Consolidation": (
        ["Focal consolidation in the {side} lower lobe.", "Dense {side} basilar consolidation."],
        ["No focal consolidation.", "There is no consolidation."],
        ["Consolidation in the {side} base cannot be excluded."],
    ),
    "Pneumonia": (
        ["Findings are consistent with {side} lower lobe pneumonia."],
        ["No findings to suggest pneumonia."],
        ["Early {side} lower lobe pneumonia cannot be excluded."],
    ),
    "Atelectasis": (
        ["Bibasilar atelectasis.", "Subsegmental atelectasis at the {side} base.", "Mild {side} basal "
         "atelectasis is noted."],
        ["No atelectasis."],
        ["Atelectasis at the {side} base is possible."],
    ),
    "Lung Opacity": (
        ["Patchy opacity in the {side} mid lung.", "Increased {side} basilar opacity."],
        ["The lungs are clear.", "No focal opacity."],
        ["Questionable opacity in the {side} lower lung."],
    ),
    "Lung Lesion": (
        ["A 1.2 cm nodule projects over the {side} upper lung.", "Known {side} lung mass is again seen."],
        ["No suspicious pulmonary nodules."],
        ["A possible nodule over the {side} lung base may be a nipple shadow."],
    ),
    "Enlarged Cardiomediastinum": (
        ["The mediastinum is widened.", "Enlarged cardiomediastinal silhouette."],
        ["The mediastinal contours are normal.", "Cardiomediastinal silhouette is within normal limits."],
        ["Mediastinal widening may be due to technique."],
    ),
    "Fracture": (
        ["Healed {side} rib fractures.", "Acute fracture of the {side} seventh rib."],
        ["No displaced fracture is identified."],
        ["Possible nondisplaced {side} rib fracture."],
    ),
    "Pleural Other": (
        ["{Side} pleural thickening is unchanged.", "Calcified pleural plaques."],
        [],
        ["Possible {side} pleural thickening."],
    ),
    "Support Devices": (
        ["Endotracheal tube terminates 4 cm above the carina.", "{Side} PICC line tip in the low SVC.",
         "Nasogastric tube courses below the diaphragm.", "Pacemaker leads are in standard position.",
         "Lines and tubes are unchanged in position."],
        [],
        [],
    ),
}
NORMAL_IMPRESSIONS = ["No acute cardiopulmonary process.", "No acute intrathoracic abnormality.",
                      "Normal chest radiograph."]
INDICATIONS = ["___-year-old man with shortness of breath.", "___F with fever and cough, evaluate for pneumonia.",
               "History: ___M with chest pain.", "Evaluate for interval change.", "Status post line placement."]
TECHNIQUES = ["PA and lateral views of the chest.", "Portable AP chest radiograph.", "Single frontal view."]
EXAMS = ["CHEST (PA AND LAT)", "CHEST (PORTABLE AP)", "CHEST PORT. LINE PLACEMENT"]


def _wrap(header: str | None, text: str) -> list[str]:
    body = f"{header}:  {text}" if header else text
    return [" " + line for line in textwrap.wrap(body, width=77)] + [" "]


def make_report(rng: random.Random) -> tuple[str, dict[str, str]]:
    """One report in MIMIC's text layout and its CheXpert labels ("1.0", "0.0", "-1.0" or "")."""
    labels = dict.fromkeys(LABEL_NAMES, "")
    findings: list[str] = []
    n_pos = rng.choice([0, 0, 0, 1, 1, 2, 3])
    chosen = rng.sample([k for k in BANK if BANK[k][0]], n_pos)
    for label in chosen:
        pos, neg, unc = BANK[label]
        if unc and rng.random() < 0.2:
            findings.append(rng.choice(unc))
            labels[label] = "-1.0"
        else:
            findings.append(rng.choice(pos))
            labels[label] = "1.0"
    for label in rng.sample(list(BANK), 3):
        neg = BANK[label][1]
        if label not in chosen and neg:
            findings.append(rng.choice(neg))
            labels[label] = "0.0"
    side = rng.choice(["right", "left", "bilateral"])
    findings = [f.format(side=side, Side=side.capitalize()) for f in findings]
    rng.shuffle(findings)
    if not any(v in ("1.0", "-1.0") for k, v in labels.items() if k != "Support Devices"):
        labels["No Finding"] = "1.0"
        impression = rng.choice(NORMAL_IMPRESSIONS)
    else:
        impression = " ".join(findings[: rng.randint(1, len(findings))])
    lines = ["                                 FINAL REPORT"]
    lines += _wrap("EXAMINATION", rng.choice(EXAMS))
    lines += _wrap("INDICATION", rng.choice(INDICATIONS))
    lines += _wrap("TECHNIQUE", rng.choice(TECHNIQUES))
    lines += _wrap("COMPARISON", rng.choice(["___", "None.", "Chest radiograph from ___."]))
    shape = rng.random()
    if shape < 0.825:  # findings and impression (82.4% of MIMIC-CXR reports have one)
        lines += _wrap("FINDINGS", " ".join(findings) or "The lungs are clear.")
        lines += _wrap("IMPRESSION", impression)
    elif shape < 0.95:  # findings only
        lines += _wrap("FINDINGS", " ".join(findings) or "The lungs are clear.")
    else:  # neither: a title and paragraphs (the parser's last_paragraph)
        lines += _wrap(None, "CHEST, PA AND LATERAL:")
        lines += _wrap(None, " ".join(findings) or "The lungs are clear.")
    return "\n".join(lines) + "\n", labels


def report_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` synthetic MIMIC-style report texts."""
    rng = random.Random(seed)
    return [make_report(rng)[0] for _ in range(n)]


def _hex(rng: random.Random, k: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(k))


def make_tree(out: Path, n_studies: int = 227_835, n_images: int = 377_110, n_subjects: int = 64_588,
              seed: int = 0, image_bytes: int = 0, image_payload: bytes | None = None) -> dict[str, float]:
    """Write the tree and CSVs; return timing figures. Images hold ``image_payload`` (e.g. a small real JPEG),
    else ``image_bytes`` zero bytes."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    subjects = rng.sample(range(10_000_000, 20_000_000), n_subjects)
    study_ids = rng.sample(range(50_000_000, 60_000_000), n_studies)
    owner = [subjects[i] if i < n_subjects else rng.choice(subjects) for i in range(n_studies)]
    per_study = [1] * n_studies
    for i in rng.sample(range(n_studies), n_images - n_studies):  # most have 2, some 3+
        per_study[i] += 1
    files = out / "files"
    meta_rows, split_rows, label_rows = [], [], []
    split_of = {s: ("train" if r < 0.978 else "validate" if r < 0.986 else "test")
                for s, r in ((s, rng.random()) for s in subjects)}
    payload = image_payload if image_payload is not None else b"\0" * image_bytes
    for sid, subj, k in zip(study_ids, owner, per_study, strict=False):
        pdir = files / f"p{str(subj)[:2]}" / f"p{subj}"
        sdir = pdir / f"s{sid}"
        sdir.mkdir(parents=True, exist_ok=True)
        text, labels = make_report(rng)
        (pdir / f"s{sid}.txt").write_text(text)
        for j in range(k):
            dicom = "-".join(_hex(rng, 8) for _ in range(5))
            (sdir / f"{dicom}.jpg").write_bytes(payload)
            view = "PA" if j == 0 else "LATERAL" if j == 1 else rng.choice(["AP", "LL", ""])
            meta_rows.append([dicom, subj, sid, "CHEST (PA AND LAT)", view, 3056, 2544, 21800506, 213014.531,
                              "CHEST (PA AND LAT)", "postero-anterior", "Erect"])
            split_rows.append([dicom, sid, subj, split_of[subj]])
        label_rows.append([subj, sid, *[labels[n] for n in LABEL_NAMES]])
    t1 = time.perf_counter()

    def write(name: str, header: list[str], rows: list[list]) -> None:
        with gzip.open(out / name, "wt", compresslevel=1, newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)

    write("mimic-cxr-2.0.0-metadata.csv.gz",
          ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
           "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
           "PatientOrientationCodeSequence_CodeMeaning"], meta_rows)
    write("mimic-cxr-2.0.0-split.csv.gz", ["dicom_id", "study_id", "subject_id", "split"], split_rows)
    write("mimic-cxr-2.0.0-chexpert.csv.gz", ["subject_id", "study_id", *LABEL_NAMES], label_rows)
    write("mimic-cxr-2.0.0-negbio.csv.gz", ["subject_id", "study_id", *LABEL_NAMES], label_rows)
    return {"tree_s": t1 - t0, "csv_s": time.perf_counter() - t1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--studies", type=int, default=227_835)
    ap.add_argument("--images", type=int, default=377_110)
    ap.add_argument("--subjects", type=int, default=64_588)
    ap.add_argument("--image-bytes", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    subjects = min(args.subjects, args.studies)
    print(make_tree(args.out, args.studies, args.images, subjects, image_bytes=args.image_bytes))


if __name__ == "__main__":
    os.umask(0o022)
    main()
