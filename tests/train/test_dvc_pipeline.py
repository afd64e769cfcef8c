"""`dvc repro` of the real dvc.yaml in a temporary git repository, with tiny parameters."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.train.lifecycle_fixtures import make_data_dir

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def tiny_params(data_dir: Path) -> dict[str, object]:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["dir"] = str(data_dir)
    params["prepare"].update(max_pairs=48, catalog_pairs=16, dev_pairs=24)
    params["train"].update(
        model_type="bi-encoder", adapter="none", encoder_layers=1, head_epochs=2, dev_pairs=24
    )
    return dict(params)


def without_ship_stage(text: str) -> str:
    """The repo's dvc.yaml less its 'ship' stage (it packages a small model: tests/train/test_ship.py)."""
    pipeline = yaml.safe_load(text)
    assert "ship" in pipeline["stages"]
    del pipeline["stages"]["ship"]
    return yaml.safe_dump(pipeline, sort_keys=False)


def dvc(repo: Path, *args: str) -> str:
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "FRESHRANK_STATE_DIR": str(repo.parent / "state"),
    }
    done = subprocess.run(
        [str(Path(venv_bin) / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    pipeline = without_ship_stage((REPO / "dvc.yaml").read_text())
    repo.mkdir()
    (repo / "dvc.yaml").write_text(pipeline)
    for stage in yaml.safe_load(pipeline)["stages"].values():
        for dep in stage.get("deps", []):
            if dep.startswith("src/"):  # the code a stage depends on: its hash is part of the lock
                (repo / dep).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / dep, repo / dep)
    (repo / "params.yaml").write_text(
        yaml.safe_dump(tiny_params(make_data_dir(tmp_path / "data")), sort_keys=False)
    )
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    dvc(repo, "remote", "add", "-d", "local", str(tmp_path / "remote"))
    return repo


def test_repro_then_noop_then_only_downstream_stages(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = pipeline_repo
    first = dvc(repo, "repro")
    assert ran(first) == ["prepare", "train", "evaluate", "export"]
    metrics = json.loads((repo / "metrics.json").read_text())
    assert 0.0 <= metrics["ndcg_at_10"] <= 1.0 and 0.0 <= metrics["dev_accuracy"] <= 1.0
    assert (repo / "models" / "export" / "onnx" / "encoder.int8.onnx").is_file()
    assert (repo / "models" / "candidate" / "loss.csv").is_file()
    assert "/candidate" in (repo / "models" / ".gitignore").read_text()  # weights are DVC's, not git's

    second = dvc(repo, "repro")
    assert ran(second) == [] and "up to date" in second

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["export"]["quantize"] = False
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(dvc(repo, "repro")) == ["export"]
    assert (repo / "models" / "export" / "onnx" / "encoder.fp32.onnx").is_file()

    params["train"]["head_epochs"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # a dry run lists the changed stage; its downstream stages follow once its outputs change. Not prepare.
    assert ran(dvc(repo, "repro", "--dry")) == ["train"]
    status = dvc(repo, "status")
    assert "train:" in status and "prepare:" not in status

    pushed = dvc(repo, "push")
    assert "pushed" in pushed or "files" in pushed
    assert any((tmp_path / "remote").rglob("*")), "the remote holds the model files"
