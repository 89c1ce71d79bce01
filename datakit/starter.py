"""``datakit init``: a commented starter ``datakit.toml`` for MIMIC-CXR, MIMIC-CXR-JPG or IU-Xray."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

from datakit.errors import ConfigError, DatakitError

DATASETS = {
    "mimic-cxr": dict(
        title="MIMIC-CXR (DICOM) with its reports", format="mimic-cxr", source="data/mimic-cxr",
        source_help="the folder holding files/p10 … p19 (reports and .dcm images) and mimic-cxr-2.0.0-*.csv.gz",
    ),
    "mimic-cxr-jpg": dict(
        title="MIMIC-CXR-JPG with the MIMIC-CXR reports", format="mimic-cxr-jpg", source="data/mimic-cxr-jpg",
        source_help="the folder holding files/p10 … p19 (reports beside the .jpg images) and "
        "mimic-cxr-2.0.0-*.csv.gz",
    ),
    "iu-xray": dict(
        title="IU-Xray (Open-i) reports and images", format="iu-xray-xml", source="data/iu-xray",
        source_help="the folder holding ecgen-radiology/*.xml and NLMCXR_png/",
    ),
}


def starter_text(dataset: str, name: str = "datakit.toml") -> str:
    """The starter config for ``dataset``, as text."""
    if dataset not in DATASETS:
        raise ConfigError(f"no starter config for {dataset!r}", hint=f"choose one of: {', '.join(DATASETS)}")
    template = Template(resources.files("datakit").joinpath("data/starter.toml").read_text("utf-8"))
    return template.substitute(DATASETS[dataset], name=name, run_name=dataset)


def write_starter(path: str | Path = "datakit.toml", dataset: str = "mimic-cxr", *, force: bool = False) -> Path:
    """Write the starter config to ``path`` (a folder gets ``datakit.toml``); an existing file is kept."""
    path = Path(path)
    if path.is_dir():
        path = path / "datakit.toml"
    if path.exists() and not force:
        raise DatakitError(f"{path} exists already", hint="choose another path, or add --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_text(dataset, path.name), encoding="utf-8")
    return path
