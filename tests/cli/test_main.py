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


# -- a fast, quiet start; user errors exit 2 with one line ------------------------

_HEAVY = ("tensorflow", "keras", "jax")


def test_parsing_help_and_version_import_no_tensorflow_or_keras():
    """In the command's process (argv[0] is `keras-autolr`) parsing imports no ML framework."""
    code = (
        "import sys\n"
        "sys.argv[0] = 'keras-autolr'  # what the console script's process holds\n"
        "from keras_autolr.cli import build_parser\n"
        "build_parser().parse_args(['run', '--task', 't', '--methods', 'constant', '--lrs', '0.1', '--out', 'o'])\n"
        "codes = []\n"
        "for argv in (['--help'], ['--version'], ['run', '--task', 't', '--methods', 'c', '--lrs', '1',\n"
        "             '--out', 'o', '--epochs', '0'], ['fh', 'estimate']):\n"
        "    try:\n"
        "        build_parser().parse_args(argv)\n"
        "    except SystemExit as e:\n"
        "        codes.append(e.code)\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {_HEAVY!r})\n"
        "print('RESULT', codes, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "RESULT [0, 0, 2, 2] []"


def test_python_m_help_imports_no_tensorflow():
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "keras_autolr.cli", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "usage: keras-autolr" in out.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "import time:" in line]
    assert "argparse" in imported  # the profile is there...
    assert not [m for m in imported if m.split(".")[0] in _HEAVY]  # ...and holds no framework


def test_version_prints_the_package_version(capsys):
    import keras_autolr

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"keras-autolr {keras_autolr.__version__}"


def _filtered(level, text):
    """What `quiet_tf_startup` lets through of `text` written to fd 2, in a fresh process."""
    import os

    code = (
        "import os, sys\n"
        "sys.argv[0] = 'keras-autolr'  # the command's process: no TensorFlow imported here\n"
        "from keras_autolr.cli._common import quiet_tf_startup\n"
        "with quiet_tf_startup():\n"
        f"    os.write(2, {text.encode()!r})\n"
        "    print('python warning', file=sys.stderr)\n"
        "print('after', file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return out.stderr


_BANNERS = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796153051.428888   10394 port.cc:153] oneDNN custom operations are on.\n"
    "I0000 00:00:1796153051.429238   10394 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n"
    "I0000 00:00:1796153051.498600   10394 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
    "2025-09-17 14:44:05.157831: W external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] old format\n"
    "E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
    "a line of our own\n"
)


def test_tensorflow_startup_lines_are_dropped_unless_asked_for():
    default = _filtered(None, _BANNERS)
    assert default == "a line of our own\npython warning\nafter\n"
    errors = _filtered("2", _BANNERS)
    assert "cuda_dnn.cc" in errors and "oneDNN" not in errors and "cudart_stub" not in errors
    assert _filtered("0", _BANNERS).startswith(_BANNERS)  # TF_CPP_MIN_LOG_LEVEL=0: everything


@pytest.mark.slow
def test_a_command_starts_tensorflow_quietly():
    """A real command (it imports TensorFlow): no oneDNN / CUDA / absl banner on stderr."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = "tensorflow"
    out = subprocess.run([sys.executable, "-m", "keras_autolr.cli", "mcv", "cost", "--method", "method2"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "forward  16" in out.stdout
    for banner in ("cuda_", "cudart", "oneDNN", "absl::InitializeLog", "cpu_feature_guard"):
        assert banner not in out.stderr, out.stderr


def _one_line_error(capsys, argv):
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("keras-autolr: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("command", ["estimate", "info"])
def test_fh_on_a_missing_file_is_one_line(tmp_path, capsys, command):
    err = _one_line_error(capsys, ["fh", command, str(tmp_path / "missing.h5")])
    assert "No feature history at" in err and "FeatureHistory" in err


@pytest.mark.parametrize("command", ["estimate", "info"])
def test_fh_on_a_corrupt_file_is_one_line(tmp_path, capsys, command):
    path = tmp_path / "corrupt.h5"
    path.write_bytes(b"not an HDF5 file")
    err = _one_line_error(capsys, ["fh", command, str(path)])
    assert "Cannot read" in err and "record the history again" in err


def test_unknown_method_option_names_the_valid_ones(tmp_path, capsys):
    err = _one_line_error(capsys, ["run", "--task", "digits_cnn", "--methods", "arc", "--lrs", "0.01",
                                   "--size", "smoke", "--out", str(tmp_path), "--option", "arc:bogus=1"])
    assert "bogus" in err and "frequency" in err and "controller" in err
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_option_format_and_method_are_checked(capsys, tmp_path):
    assert cli.parse_options(["mcv:method3:pairing=paired"], ["mcv:method3"]) == {"mcv:method3": {"pairing": "paired"}}
    base = ["run", "--task", "digits_cnn", "--methods", "constant", "--lrs", "0.01", "--out", str(tmp_path)]
    assert "METHOD:KEY=VALUE" in _one_line_error(capsys, base + ["--option", "frequency=3"])
    assert "not in --methods" in _one_line_error(capsys, base + ["--option", "arc:frequency=3"])


@pytest.mark.parametrize("epochs", ["0", "-2"])
def test_run_refuses_epochs_below_one(tmp_path, capsys, epochs):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--task", "digits_cnn", "--methods", "constant", "--lrs", "0.01",
                  "--out", str(tmp_path), "--epochs", epochs])
    assert e.value.code == 2
    assert f"argument --epochs: must be >= 1, got {int(epochs)}" in capsys.readouterr().err
