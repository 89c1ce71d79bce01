"""The ``[finetune]`` extra: present and recent enough, or an error that says how to install it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

from datakit.finetune.errors import FinetuneDepsMissing

# The lowest versions the fine-tune code was written for (the v5 transformers API; TRL's VLM assistant-only loss).
MINIMUM = {
    "torch": "2.6",
    "transformers": "5.18",
    "peft": "0.17",
    "trl": "1.16",
    "accelerate": "1.0",
    "datasets": "4.0",
}
TORCH_PIN = "2.13.0"
INSTALL_HINT = (
    f"install torch first (pip install 'torch=={TORCH_PIN}': the CPU build, or the CUDA build for your GPU from "
    "https://pytorch.org), then the extra: pip install 'datakit[finetune]' (pip only: uv and poetry resolve to a "
    "CUDA torch of several GB)"
)


def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("+")[0].split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def problems() -> list[str]:
    """What is missing or too old in the ``[finetune]`` extra; empty when everything is there."""
    found = []
    for name, low in MINIMUM.items():
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # a broken install, or a module blocked in sys.modules
            spec = None
        if spec is None:
            found.append(f"{name} is not installed")
            continue
        have = importlib.metadata.version(name)
        if _version_tuple(have) < _version_tuple(low):
            found.append(f"{name} {have} is older than {low}")
    return found


def require() -> None:
    """Raise :class:`FinetuneDepsMissing` unless the extra is usable; keep the hub offline unless asked."""
    missing = problems()
    if missing:
        raise FinetuneDepsMissing(
            "fine-tuning needs the [finetune] extra: " + "; ".join(missing), hint=INSTALL_HINT
        )
    # never reach a model hub implicitly: HF_HUB_OFFLINE=0 set by the user is the only way to allow downloads
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
