"""Every reproduction script runs end to end at its --smoke size (as CI does), through the package's public API."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Scripts are the files with a main block; the rest are shared helpers.
# fh_estimation_v2 has its own smoke (`test_fh_v2_smoke_resumes`, which also reruns it): not twice.
SCRIPTS = sorted(p for p in (ROOT / "reproductions").glob("*.py")
                 if '__name__ == "__main__"' in p.read_text() and p.stem != "fh_estimation_v2")


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
    # 5 SGD baselines and Adam over their (smoke) text grids, plus one MLR-SNet run
    sys.path.insert(0, str(ROOT / "reproductions"))
    from mlrsnet_transfer import GRIDS, tuned_grid
    sgd, adam = tuned_grid("text", "sgd", smoke=True), tuned_grid("text", "adam", smoke=True)
    assert len(sgd) == len(adam) == 2 and set(sgd) < set(GRIDS["text"]["sgd"]) and set(adam) < set(GRIDS["text"]["adam"])
    assert len(runs) == 5 * len(sgd) + len(adam) + 1
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "LR grid" in text and "*" in text
    import json
    mlr = [json.loads(p.read_text()) for p in runs if p.name.startswith("mlrsnet")][0]
    assert mlr["options"]["cross_modal"] is True and mlr["optimizer"] == "sgd_clip"


def _fh_v2():
    sys.path.insert(0, str(ROOT / "reproductions"))
    import fh_estimation_v2

    return fh_estimation_v2


def test_fh_v2_budget_stats_known_answers():
    """A proxy equal to the target: MAE 0, tau 1, and both intervals on the proxy's side of 0."""
    import numpy as np

    v2 = _fh_v2()
    rng = np.random.default_rng(0)
    target = rng.uniform(0.5, 0.9, 40)
    latest = target + rng.normal(0, 0.05, 40)
    s = v2.budget_stats(latest, target.copy(), target, final_val=target + 1.0, n_boot=2000)
    assert s["mae_proxy"] == 0.0 and s["tau_proxy"] == 1.0
    assert s["mae_latest"] > 0.02 and s["tau_latest"] < 0.9
    assert s["mae_diff_ci"][0] < s["mae_diff_ci"][1] < 0  # proxy clearly better on error
    assert 0 < s["tau_diff_ci"][0] < s["tau_diff_ci"][1]  # ... and on ranking
    # The ceiling is tau(final validation, target): 1 for any increasing map, -1 for a decreasing one.
    assert s["tau_ceiling"] == 1.0
    assert v2.budget_stats(latest, latest, target, final_val=-target, n_boot=50)["tau_ceiling"] == pytest.approx(-1.0)
    assert set(s) == {"mae_latest", "mae_proxy", "mae_diff_ci", "tau_latest", "tau_proxy", "tau_diff_ci",
                      "tau_ceiling"}


def test_fh_v2_budget_stats_equal_predictors_and_too_few():
    """Proxy == latest: every resampled difference is 0; one configuration: no interval, no tau."""
    import numpy as np

    v2 = _fh_v2()
    target = np.linspace(0.1, 0.9, 12)
    latest = target[::-1].copy()
    s = v2.budget_stats(latest, latest, target, final_val=target, n_boot=200)
    assert s["mae_diff_ci"] == [0.0, 0.0] and s["tau_diff_ci"] == [0.0, 0.0]
    assert s["tau_latest"] == s["tau_proxy"] == pytest.approx(-1.0)
    one = v2.budget_stats([0.5], [0.4], [0.45], final_val=[0.5])
    assert one["mae_diff_ci"] == [None, None] and one["tau_latest"] is None
    assert abs(one["mae_proxy"] - 0.05) < 1e-12


def test_fh_v2_summary_shape_targets_and_incomplete_configs():
    """summary.json has the issue's shape; the target is the repeats' mean; half-done configurations are left out."""
    v2 = _fh_v2()
    records = []
    for i in range(5):
        tests = (0.5 + 0.05 * i, 0.6 + 0.05 * i)  # mean 0.55 + 0.05 i
        mean = sum(tests) / 2
        frac = {k: mean for k in ("10", "25", "50", "100")}
        records.append({"dataset": "mnist1d", "epochs": 40, "index": i, "repeat": 0, "cpu_s": 3600.0,
                        "final_test_accuracy": tests[0], "final_val_accuracy": mean, "latest": frac,
                        "proxy": {k: v + 0.01 for k, v in frac.items()}})
        if i < 4:  # configuration 4 has only repeat 0
            records.append({"dataset": "mnist1d", "epochs": 40, "index": i, "repeat": 1,
                            "final_test_accuracy": tests[1]})
    summary, extra = v2.summarize(records, repeats=2, n_boot=100)
    assert list(summary) == ["datasets"] and list(summary["datasets"]) == ["mnist1d@40"]
    study = summary["datasets"]["mnist1d@40"]
    assert study["configs"] == 4 and list(study["budgets"]) == ["10", "25", "50"]
    b = study["budgets"]["25"]
    assert b["mae_latest"] == 0.0 and abs(b["mae_proxy"] - 0.01) < 1e-9
    assert b["tau_latest"] == b["tau_proxy"] == b["tau_ceiling"] == 1.0
    assert extra["mnist1d@40"]["tau_seed"] == 1.0 and extra["mnist1d@40"]["cpu_hours"] == 5.0
    assert "| mnist1d@40 | 4 | 25% |" in v2.markdown(summary, extra)


def test_fh_v2_jobs_budgets_and_configs():
    """Estimates at 10/25/50% of 40 and 200 epochs; the short budget runs first; MNIST-1D gets MLPs only."""
    v2 = _fh_v2()
    assert v2.fraction_epochs(40) == {"10": 3, "25": 9, "50": 19, "100": 39}
    assert v2.fraction_epochs(200) == {"10": 19, "25": 49, "50": 99, "100": 199}
    js = v2.jobs(["a", "b"], [40, 200], 3, 2)
    assert len(js) == 24 and js[:3] == [(40, 0, "a", 0), (40, 0, "a", 1), (40, 0, "b", 0)]
    assert all(j[0] == 40 for j in js[:12])
    assert {c["arch"] for c in v2.study_configs("mnist1d", 20)} == {"mlp"}
    # The first configurations are fh_estimation.py's (same sampler seed).
    import numpy as np
    from keras_autolr.harness import models

    rng = np.random.default_rng(2)
    assert v2.study_configs("cifar10", 2) == [models.feature_history_config(rng, "cifar10") for _ in range(2)]


@pytest.mark.slow
def test_fh_v2_smoke_resumes(tmp_path):
    """A smoke study writes the issue's summary.json; run again, it finds nothing left to train."""
    import json

    script = ROOT / "reproductions" / "fh_estimation_v2.py"
    cmd = [sys.executable, str(script), "--smoke", "--datasets", "mnist1d", "--out", str(tmp_path / "out")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    assert "6 runs to go" in out.stdout and "CPU hours" in out.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    study = summary["datasets"]["mnist1d@2"]
    assert study["configs"] == 3 and len(study["budgets"]["50"]["tau_diff_ci"]) == 2
    assert len(list((tmp_path / "out" / "runs").glob("*.json"))) == 6
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 runs to go" in again.stdout
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary


# -- mlrsnet_transfer.py --protocol official (issue 18.4) ----------------------------------------


def _official_module():
    sys.path.insert(0, str(ROOT / "reproductions"))
    import mlrsnet_transfer

    return mlrsnet_transfer


def _record(label, seed, val, test, lr0=0.1, metric="accuracy", mode="max", diverged=False):
    """A synthetic run record with per-epoch validation and test curves."""
    best = [v for v in val if v is not None]
    return {"label": label, "seed": seed, "initial_lr": lr0, "metric": metric, "mode": mode, "epochs": len(val),
            "history": {"val_" + metric: val}, "test_history": {metric: test}, "diverged": diverged,
            "best": (max(best) if mode == "max" else min(best)) if best else None, "test": {metric: test[-1]}}


def test_official_judging_takes_test_at_the_best_validation_epoch():
    m = _official_module()
    # The first best validation epoch (1), not the best test epoch (3) nor the last.
    assert m.test_at_best_val(_record("x", 0, [0.5, 0.7, 0.7, 0.6], [0.1, 0.2, 0.3, 0.9])) == 0.2
    rec = _record("x", 0, [None, 9.0, 8.0, 8.5], [20.0, 10.0, 7.0, 6.0], metric="perplexity", mode="min")
    assert m.test_at_best_val(rec) == 7.0
    assert m.test_at_best_val(_record("x", 0, [None, None], [0.3, 0.4])) is None
    # Baselines at their LR chosen on seed 0 by best validation (0.3 here, though 1.0 tests better).
    records = [_record("fixed", 0, [0.6, 0.8], [0.6, 0.7], lr0=0.3), _record("fixed", 0, [0.6, 0.7], [0.9, 0.9], lr0=1.0),
               _record("fixed", 1, [0.5, 0.9], [0.5, 0.8], lr0=0.3), _record("fixed", 1, [0.9, 0.9], [0.9, 0.9], lr0=1.0)]
    stats = m.method_stats(records)["fixed"]
    assert stats["initial_lr"] == 0.3 and stats["test_at_best_val"] == [0.7, 0.8] and stats["best_val"] == [0.8, 0.9]


def _stats(**means):
    """method_stats-like: label -> two seeds around the given mean (None: a diverged seed)."""
    return {k: {c: list(v) if isinstance(v, tuple) else [v - 0.001, v + 0.001] for c in ("test_at_best_val", "best_val")}
            for k, v in means.items()}


def test_official_claim_check_within_one_point_and_better_than_fixed():
    m = _official_module()
    base = dict(fixed=0.80, exponential=0.84, multistep=0.86, sgdr=0.85, adam=0.90, hd=0.83)
    check = lambda mlr, **kw: m.claim_check(_stats(**{**base, **kw, "mlrsnet_x": mlr}), "mlrsnet_x",
                                            "test_at_best_val", "max", 0.01)
    ok = check(0.851)
    assert ok["holds"] and ok["best_hand_designed"] == "multistep" and abs(ok["gap"] + 0.009) < 1e-9
    assert ok["best_baseline"] == "adam"  # reported, not judged: Adam is no hand-designed schedule
    far = check(0.845)
    assert far["within_tolerance"] is False and far["beats_fixed"] and far["holds"] is False
    assert check(0.79, multistep=0.795)["holds"] is False  # within a point, but worse than fixed
    diverged = check((0.9, None))
    assert diverged["value"] is None and diverged["holds"] is False
    assert m.claim_check(_stats(mlrsnet_x=0.9, sgdr=0.8), "mlrsnet_x", "best_val", "max", 0.01)["holds"] is None
    # Perplexity: lower is better, one perplexity point of tolerance.
    ppl = dict(fixed=130.0, exponential=118.0, multistep=117.0, sgdr=125.0, adam=121.0, hd=128.0)
    assert m.claim_check(_stats(**ppl, mlrsnet_x=117.9), "mlrsnet_x", "best_val", "min", 1.0)["holds"]
    assert not m.claim_check(_stats(**ppl, mlrsnet_x=118.5), "mlrsnet_x", "best_val", "min", 1.0)["holds"]


def test_official_plan_shards_cover_the_grid_once():
    m = _official_module()
    study = m.OfficialStudy("unused", smoke=True, seeds=[0, 1, 2])
    mlr = [("mlrsnet_a", "mlrsnet_official", "sgd_official", [0.1], {})]
    base = [("fixed", "constant", "sgd_official", [0.1, 0.3], {}), ("adam", "constant", "adam", [1e-3], {})]
    first, later = m.official_plan(study, ["fashion", "ptb"], lambda name: (mlr, base))
    assert len(first) == 2 * (3 + 3) and len(later) == 2 * 2 * 2  # mlr x 3 seeds + grids; baselines x 2 seeds
    shards = [first[i::3] for i in range(3)]
    assert sorted(map(repr, sum(shards, []))) == sorted(map(repr, first))
    assert m.shard_spec("1/2") == (1, 2)
    with pytest.raises(Exception, match="0 <= i < k"):
        m.shard_spec("2/2")


def test_official_train_cell_nets_are_the_authors_meta_training_cell(tmp_path):
    """The shipped nets re-run by the meta-training cell = `load_official(pth, cell="meta_train")`."""
    m = _official_module()
    from keras_autolr.runtime.mlrsnet import load_net, load_official, net_outputs

    paths = m.train_cell_nets(tmp_path)
    assert [load_net(p).cell.name for p in paths] == ["meta_train"] * 3
    official = ROOT.parent / "shared" / "mlrsnet_official"
    if not official.exists():
        pytest.skip("the authors' .pth files are not beside this clone")
    losses = [2.3, 2.0, 1.5, 0.9]
    for path, which in zip(paths, (1, 100, 200)):
        want = net_outputs(load_official(official / f"mlr_snet_{which}.pth", cell="meta_train"), losses)
        got = net_outputs(load_net(path), losses)
        assert max(abs(a - b) for a, b in zip(got, want)) < 1e-6
        assert max(abs(a - b) for a, b in zip(got, net_outputs(load_net(m.scheduler.shipped_checkpoints("official")[
            (1, 100, 200).index(which)]), losses))) > 1e-4  # the cell matters


@pytest.mark.slow
def test_mlrsnet_transfer_official_protocol_smoke(tmp_path):
    """--protocol official --smoke: every net variant and tuned baseline, per-epoch test, LR traces, claims; resumes."""
    import json

    script = ROOT / "reproductions" / "mlrsnet_transfer.py"
    cmd = [sys.executable, str(script), "--protocol", "official", "--smoke", "--out", str(tmp_path / "out")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if out.returncode != 0 and "is not available offline" in out.stderr:
        pytest.skip(out.stderr.strip().splitlines()[-1][:300])
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    assert "estimated CPU hours" in out.stdout
    variants = ("mlrsnet_official", "mlrsnet_official_train_cell", "mlrsnet_ours")
    for task in ("fashion", "ptb"):
        runs = {p.name.split("__")[0]: json.loads(p.read_text()) for p in (tmp_path / "out" / task / "runs").glob("*.json")}
        assert sorted(runs) == sorted([*variants, "fixed", "exponential", "multistep", "sgdr", "adam", "hd"])
        for label, rec in runs.items():
            test = rec["test_history"][rec["metric"]]
            assert len(test) == rec["epochs"] == 3 and abs(test[-1] - rec["test"][rec["metric"]]) < 1e-6
            if label in variants:
                assert len(rec["lr_trace"]) == rec["steps"][-1] and rec["method"].startswith("mlrsnet_official")
        cells = runs["mlrsnet_official_train_cell"]["options"]["checkpoints"]
        assert all("meta_train_cell" in c for c in cells)
        if task == "ptb":
            assert runs["mlrsnet_official"]["options"]["cross_modal"] is True
            assert runs["mlrsnet_ours"]["options"]["net"] == "text"
            assert runs["fixed"]["optimizer"] == "sgd_official_text"
        summary = json.loads((tmp_path / "out" / task / "summary.json").read_text())
        assert sorted(summary["claims"]) == sorted(variants)
        assert all(set(c) == {"test_at_best_val", "best_val"} for c in summary["claims"].values())
        assert (tmp_path / "out" / task / "lr_traces.png").exists()
    assert "| net | criterion | holds |" in (tmp_path / "out" / "summary.md").read_text()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0.00 left" in again.stdout and "seed 0: best val" not in again.stdout  # every run was skipped
