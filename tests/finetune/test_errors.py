"""What the fine-tune commands say when something is missing or wrong."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tests.finetune.conftest import need_finetune_extra

need_finetune_extra()


def test_no_export(cli, tmp_path, tiny_model):
    res = cli(["finetune", tmp_path / "none", "--model", tiny_model, "--cpu"])
    assert res.exit_code == 2
    assert "does not exist" in res.output and "datakit export --run RUN --format trl" in res.output


def test_a_text_only_model_is_refused(cli, trl_export, tmp_path):
    from transformers import Qwen2Config

    Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=1).save_pretrained(tmp_path / "qwen2")
    res = cli(["finetune", trl_export, "--model", tmp_path / "qwen2", "--out", tmp_path / "out", "--cpu"])
    assert res.exit_code == 1
    assert "is a qwen2 model, not a vision-language model" in res.output
    assert "image-text-to-text" in res.output


def test_a_hub_id_is_never_downloaded(cli, trl_export, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    res = cli(["finetune", trl_export, "--model", "Qwen/Qwen2.5-VL-3B-Instruct", "--out", tmp_path / "o", "--cpu"])
    assert res.exit_code == 1
    assert "neither a local folder nor in the local Hugging Face cache" in res.output
    assert "hf download Qwen/Qwen2.5-VL-3B-Instruct" in res.output


def test_without_the_extra_the_command_says_how_to_install_it(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['trl'] = None\n"  # as if the [finetune] extra were not installed
        "from datakit.cli.app import main\n"
        f"sys.argv = ['datakit', 'finetune', {str(tmp_path)!r}, '--model', 'm']\n"
        "main()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert "fine-tuning needs the [finetune] extra: trl is not installed" in res.stderr
    assert "pip install 'torch==2.13.0'" in res.stderr and "pip install 'datakit[finetune]'" in res.stderr
    assert res.stderr.index("torch==2.13.0") < res.stderr.index("datakit[finetune]")
