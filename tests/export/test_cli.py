from typer.testing import CliRunner

from datakit.cli.app import app


def test_export_command(validated_run):
    runner = CliRunner()
    result = runner.invoke(app, ["export", "--run", str(validated_run), "--formats", "trl,llava"])
    assert result.exit_code == 0, result.output
    assert "trl" in result.output and "llava" in result.output
    assert (validated_run / "export" / "trl" / "train.jsonl").is_file()
    assert not (validated_run / "export" / "swift").exists()
    again = runner.invoke(app, ["export", "--run", str(validated_run), "--formats", "trl,llava"])
    assert again.exit_code == 0 and "up to date" in " ".join(again.output.split())  # rich wraps at the width
    card = (validated_run / "export" / "README.md").read_text()
    assert "PhysioNet Credentialed Health Data License" in card and "may not be redistributed" in card
    assert "## Loading" in card and "SFTTrainer" in card and "--image_folder" in card


def test_unknown_format_is_an_error_with_the_choices(validated_run):
    result = CliRunner().invoke(app, ["export", "--run", str(validated_run), "--formats", "axolotl"])
    assert result.exit_code == 2
    assert "unknown export format 'axolotl'" in result.output and "llamafactory" in result.output


def test_a_run_without_validation_says_what_to_do(validated_run):
    (validated_run / "validation.parquet").unlink()
    result = CliRunner().invoke(app, ["export", "--run", str(validated_run)])
    assert result.exit_code == 1 and "datakit validate" in result.output
