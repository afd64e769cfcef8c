"""The FlinkDeployment of the trend job and the job spec it runs agree (parallelism, checkpoints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from freshrank.trends.flink.spec import FlinkJobSpec

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base" / "trend-job-flinkdeployment.yaml"


def _documents() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8"))}


def test_the_job_spec_is_a_valid_streaming_spec_with_checkpoints() -> None:
    spec = FlinkJobSpec.model_validate_json(_documents()["ConfigMap"]["data"]["job.json"])
    assert spec.kafka is not None and not spec.bounded
    assert spec.checkpoint_interval_s and spec.checkpoint_dir
    assert spec.store_in_job and spec.store_url and spec.helper and spec.class_table  # the job writes Redis


def test_the_deployment_runs_the_spec_with_its_parallelism_and_checkpoint_settings() -> None:
    docs = _documents()
    spec = FlinkJobSpec.model_validate_json(docs["ConfigMap"]["data"]["job.json"])
    deployment = docs["FlinkDeployment"]["spec"]
    assert deployment["job"]["parallelism"] == spec.parallelism
    assert deployment["job"]["args"][-1] == "/opt/freshrank/spec/job.json"
    assert deployment["job"]["entryClass"] == "freshrank.flink.TrendJob"
    config = deployment["flinkConfiguration"]
    assert config["state.checkpoints.dir"] == spec.checkpoint_dir
    assert config["execution.checkpointing.interval"] == f"{spec.checkpoint_interval_s}s"
    assert int(config["taskmanager.numberOfTaskSlots"]) >= spec.parallelism
    assert deployment["job"]["upgradeMode"] == "last-state"  # resumes from the latest checkpoint
