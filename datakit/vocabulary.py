"""The fixed vocabularies of datakit's tables: the 14 CheXpert labels, datasets, splits, views, label sources.

Plain constants, apart from the table schemas in :mod:`datakit.tables` so that code needing only these (the
knowledge base, the labeler, the review app) starts without loading pandera.
Label columns hold the CheXpert convention: 1 positive, 0 negative (mentioned as absent), -1 uncertain,
null = not mentioned.
"""

from __future__ import annotations

# The 14 CheXpert observations in the labeller's own order (chexpert-labeler constants.py); column name → name
# as the CSVs and papers write it. MIMIC's CSVs list them alphabetically; readers map by name, not by position.
LABELS: dict[str, str] = {
    "no_finding": "No Finding",
    "enlarged_cardiomediastinum": "Enlarged Cardiomediastinum",
    "cardiomegaly": "Cardiomegaly",
    "lung_lesion": "Lung Lesion",
    "lung_opacity": "Lung Opacity",
    "edema": "Edema",
    "consolidation": "Consolidation",
    "pneumonia": "Pneumonia",
    "atelectasis": "Atelectasis",
    "pneumothorax": "Pneumothorax",
    "pleural_effusion": "Pleural Effusion",
    "pleural_other": "Pleural Other",
    "fracture": "Fracture",
    "support_devices": "Support Devices",
}
LABEL_COLUMNS: list[str] = list(LABELS)
LABEL_BY_NAME: dict[str, str] = {name: col for col, name in LABELS.items()}
# The five labels of the "chexbert-5" convention (f1chexbert, the "chexbert-5" subset).
LABELS_5: list[str] = ["cardiomegaly", "edema", "consolidation", "atelectasis", "pleural_effusion"]

POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1

DATASETS = ["mimic-cxr", "iu-xray"]
SPLITS = ["train", "val", "test"]
# FRONTAL: a frontal view whose PA/AP direction the source does not record (IU-Xray says only "Frontal").
VIEWS = ["PA", "AP", "FRONTAL", "LATERAL", "LL", "other"]
FRONTAL_VIEWS = ["PA", "AP", "FRONTAL"]
LABEL_SOURCES = ["chexpert", "negbio", "mesh", "labeler", "radiologist"]
