"""Every reproduction script runs end to end at its --smoke size (as CI does), through the package's public API."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Scripts are the files with a main block; the rest are shared helpers.
SCRIPTS = sorted(p for p in (ROOT / "reproductions").glob("*.py") if '__name__ == "__main__"' in p.read_text())


SOURCES = sorted(p for folder in ("reproductions", "benchmarks", "examples") for p in (ROOT / folder).glob("*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=[f"{p.parent.name}/{p.stem}" for p in SOURCES])
def test_scripts_use_the_public_api_only(source):
    """No private package names, no `runpy`, no driving the package through its CLI's argv."""
    tree = ast.parse(source.read_text())
    package_names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(a.name != "runpy" for a in node.names), f"{source.name} runs code by runpy"
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_autolr"):
            assert not any(part.startswith("_") for part in node.module.split(".")), f"{source.name}: {node.module}"
            for a in node.names:
                assert not a.name.startswith("_"), f"{source.name} imports the private {node.module}.{a.name}"
                assert not node.module.startswith("keras_autolr.cli"), f"{source.name} drives the package through its CLI"
                package_names.add(a.asname or a.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in package_names
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            raise AssertionError(f"{source.name}:{node.lineno} uses the private {node.value.id}.{node.attr}")


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_reproduction_smoke(script, tmp_path):
    out = subprocess.run([sys.executable, str(script), "--smoke", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    if out.returncode != 0 and "is not available offline" in out.stderr:
        # A clone without the offline data folder beside it (../shared/data): say so, don't fail.
        pytest.skip(out.stderr.strip().splitlines()[-1][:300])
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    produced = list((tmp_path / "out").rglob("*"))
    assert any(p.suffix in (".md", ".json") for p in produced), "a reproduction must write results"


@pytest.mark.slow
def test_mlrsnet_transfer_tuned_protocol_smoke(tmp_path):
    """--tuned: a grid per baseline, the chosen LR reported, the image net crossing to text."""
    script = ROOT / "reproductions" / "mlrsnet_transfer.py"
    out = subprocess.run([sys.executable, str(script), "--smoke", "--tuned", "--tasks", "shakespeare",
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=900, cwd=ROOT)
    if out.returncode != 0 and "is not available offline" in out.stderr:
        pytest.skip(out.stderr.strip().splitlines()[-1][:300])
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    runs = list((tmp_path / "out" / "shakespeare" / "runs").glob("*.json"))
    # 5 SGD baselines and Adam over their text grids, plus one MLR-SNet run
    sys.path.insert(0, str(ROOT / "reproductions"))
    from mlrsnet_transfer import GRIDS
    assert len(runs) == 5 * len(GRIDS["text"]["sgd"]) + len(GRIDS["text"]["adam"]) + 1
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "LR grid" in text and "*" in text
    import json
    mlr = [json.loads(p.read_text()) for p in runs if p.name.startswith("mlrsnet")][0]
    assert mlr["options"]["cross_modal"] is True and mlr["optimizer"] == "sgd_clip"
