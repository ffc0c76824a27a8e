"""Configuration: the YAML file, then LLMPULSE_* variables."""

from __future__ import annotations

import pytest

from llmpulse.processors.config import load_config
from llmpulse.processors.errors import ConfigError


def test_file_then_environment(tmp_path):
    (tmp_path / "models").mkdir()
    path = tmp_path / "worker.yaml"
    path.write_text("""
sinks: {table: ignored}          # another room's section
scoring:
  version: "5"
  toxicity: {checkpoint: models/toxic.ckpt, batch_size: 16}
guardrails: {policy: policy.yaml}
""")
    cfg = load_config(path, environ={"LLMPULSE_SCORING__TOXICITY__BATCH_SIZE": "64",
                                     "LLMPULSE_SCORING__EMBEDDINGS__ENABLED": "false",
                                     "LLMPULSE_BOOTSTRAP_SERVERS": "kafka:9092"})
    assert cfg.scoring.version == "5"
    assert cfg.scoring.toxicity.batch_size == 64 and cfg.scoring.toxicity.max_wait_s == 0.5
    assert cfg.scoring.toxicity.checkpoint == str(tmp_path / "models" / "toxic.ckpt")
    assert cfg.scoring.embeddings.enabled is False
    assert cfg.guardrails.policy == str(tmp_path / "policy.yaml")


def test_config_path_and_policy_from_the_environment(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("guardrails: {reload_interval_s: 9}\n")
    cfg = load_config(environ={"LLMPULSE_CONFIG": str(path), "LLMPULSE_POLICY": "/etc/p.yaml"})
    assert cfg.guardrails.reload_interval_s == 9 and cfg.guardrails.policy == "/etc/p.yaml"


def test_mistakes_name_the_setting(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("scoring: {toxicity: {batchsize: 3}}\n")
    with pytest.raises(ConfigError, match="batchsize"):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match=r"batch_size"):
        load_config(environ={"LLMPULSE_SCORING__TOXICITY__BATCH_SIZE": "0"})


def test_fingerprint_follows_the_settings():
    a = load_config(environ={})
    b = load_config(environ={"LLMPULSE_SCORING__QUALITY__REPETITION_THRESHOLD": "0.5"})
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == load_config(environ={}).fingerprint()
