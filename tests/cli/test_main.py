import subprocess
import sys

import pytest

from keras_autolr import cli


def test_unknown_method_is_a_clear_error(tmp_path, capsys):
    rc = cli.main(["run", "--task", "digits_cnn", "--methods", "nope", "--lrs", "0.01", "--out", str(tmp_path)])
    assert rc == 2
    assert "Unknown learning-rate method 'nope'" in capsys.readouterr().err


def test_datasets_command_lists_sets(capsys):
    cli.main(["datasets"])
    out = capsys.readouterr().out
    assert "mnist1d" in out and "digits" in out


@pytest.mark.slow
def test_demo_smoke_end_to_end(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "keras_autolr", "demo", "--size", "smoke", "--epochs", "2",
         "--methods", "constant", "cosine_restarts", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| constant |" in out.stdout and "converge step" in out.stdout
    assert (tmp_path / "table.md").exists()
