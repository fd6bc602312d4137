import argparse
import json

import numpy as np
import pytest

from keras_autolr.cli import feature_history as cli
from keras_autolr.runtime.feature_history.store import HistoryStore


def _parser():
    p = argparse.ArgumentParser()
    cli.add_parser(p.add_subparsers(dest="cmd"))
    return p


def test_cli_estimate_and_info(tmp_path, capsys):
    store = HistoryStore(tmp_path / "h.h5", fingerprint="f",
                         metadata={"model_name": "m"})
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)  # the same validation rows every epoch
    for e in range(3):
        h = np.eye(3)[y] * 3 + rng.normal(size=(60, 3))
        store.write_epoch(e, {"val_embeddings": h, "val_labels": y,
                              "train_embeddings": h, "train_labels": y,
                              "kernel": np.eye(3), "bias": np.zeros(3)})
    a = _parser().parse_args(["fh", "estimate", str(tmp_path / "h.h5"),
                              "--k", "2"])
    out = a.func(a)
    assert out["epochs"] == [1, 2] and not out["partial"]
    assert json.loads(capsys.readouterr().out)["proxy_accuracy"] > 0.8
    a = _parser().parse_args(["fh", "info", str(tmp_path / "h.h5")])
    assert a.func(a)["metadata"]["model_name"] == "m"


@pytest.mark.slow
def test_demo_section_rows():
    from keras_autolr.cli.feature_history_demo import demo_section
    lines = []
    rows = demo_section(log=lines.append, dataset="digits", epochs=4,
                        fractions=(0.5,), k=10)
    assert [r["epoch"] for r in rows] == [2, 4]
    assert rows[0]["partial"] and rows[1]["partial"]
    for r in rows:
        assert 0 <= r["proxy_accuracy"] <= 1
    assert rows[-1]["latest_val_accuracy"] == rows[-1]["final_val_accuracy"]
    assert any("proxy estimate" in line for line in lines)
