"""Toxicity: the real Detoxify loading path on a tiny offline checkpoint, and the fallback."""

from __future__ import annotations

import logging

import pytest

from llmpulse.processors.config import ToxicityConfig
from llmpulse.processors.scoring import toxicity as toxicity_module
from llmpulse.processors.scoring.toxicity import DetoxifyModel, ToxicityScorer

from .conftest import make_call


def _scores(scorer: ToxicityScorer, answers: list[str]) -> list[dict[str, object]]:
    calls = [make_call("please answer", a, call_id=f"c{i}") for i, a in enumerate(answers)]
    return [{r.name: r for r in results} for results in scorer.score(calls)]


def test_tiny_detoxify_checkpoint_scores_toxic_text_above_benign(tiny_detoxify):
    checkpoint, folder = tiny_detoxify
    scorer = ToxicityScorer(ToxicityConfig(checkpoint=str(checkpoint), huggingface_config_path=str(folder),
                                           threads=1))
    toxic, benign = _scores(scorer, ["you are a stupid idiot", "thank you for your help"])
    assert toxic["toxicity"].backend == "detoxify:toxic-tiny"
    assert toxic["toxicity"].status == "ok" and benign["toxicity"].status == "ok"
    assert toxic["toxicity"].value > 0.5 > benign["toxicity"].value
    assert toxic["toxicity"].label == "toxicity"
    assert benign["toxicity"].detail is None  # not a fallback


def test_detoxify_model_batches_keep_order(tiny_detoxify):
    checkpoint, folder = tiny_detoxify
    model = DetoxifyModel(str(checkpoint), huggingface_config_path=str(folder))
    [(single, _)] = model.predict(["shut up you worthless moron"])
    values = [v for v, _ in model.predict(["have a nice day", "shut up you worthless moron"])]
    assert values[1] == pytest.approx(single, abs=1e-5)
    assert values[0] < values[1]


def test_detoxify_from_the_usual_caches(tiny_detoxify, tmp_path, monkeypatch):
    """A machine where Detoxify ran before has its checkpoint in the torch hub cache and the
    base model's files in the Hugging Face cache: both are used, offline."""
    checkpoint, folder = tiny_detoxify
    hub = tmp_path / "torch-hub"
    (hub / "checkpoints").mkdir(parents=True)
    (hub / "checkpoints" / "toxic_original-c1212f89.ckpt").write_bytes(checkpoint.read_bytes())
    hf = tmp_path / "hf-cache"
    snapshot = hf / "models--bert-base-uncased" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for item in folder.iterdir():
        if item.suffix != ".ckpt":
            (snapshot / item.name).write_bytes(item.read_bytes())
    (hf / "models--bert-base-uncased" / "refs").mkdir()
    (hf / "models--bert-base-uncased" / "refs" / "main").write_text("0123abcd")
    found = toxicity_module.cached_detoxify("original", torch_hub_dir=str(hub), hf_cache_dir=str(hf))
    assert found == (str(hub / "checkpoints" / "toxic_original-c1212f89.ckpt"), str(snapshot))
    assert toxicity_module.cached_detoxify("unbiased", torch_hub_dir=str(hub), hf_cache_dir=str(hf)) is None

    real = toxicity_module.cached_detoxify
    monkeypatch.setattr(toxicity_module, "cached_detoxify",
                        lambda model_type: real(model_type, torch_hub_dir=str(hub), hf_cache_dir=str(hf)))
    scorer = ToxicityScorer(ToxicityConfig(threads=1))
    toxic, benign = _scores(scorer, ["you stupid worthless fool", "have a nice day"])
    assert toxic["toxicity"].backend == "detoxify:original"
    assert toxic["toxicity"].value > benign["toxicity"].value


def test_without_detoxify_the_fallback_labels_its_backend(tmp_path, caplog):
    missing = tmp_path / "nowhere.ckpt"
    scorer = ToxicityScorer(ToxicityConfig(checkpoint=str(missing)))
    with caplog.at_level(logging.WARNING):
        insult, kind = _scores(scorer, ["you are a fucking idiot", "thank you, have a nice day"])
    result = insult["toxicity"]
    assert result.backend == "profanity-check"
    assert result.status == "ok" and result.value > kind["toxicity"].value
    assert str(missing) in (result.detail or "") and result.detail.startswith("fallback")
    assert str(missing) in caplog.text
    assert "idiot" not in caplog.text  # no answer text in the logs


def test_detoxify_required_but_missing_is_unavailable_not_a_number(tmp_path):
    scorer = ToxicityScorer(ToxicityConfig(backend="detoxify", checkpoint=str(tmp_path / "x.ckpt")))
    [scores] = _scores(scorer, ["anything at all"])
    for name in ("toxicity", "prompt_toxicity"):
        assert scores[name].status == "unavailable"
        assert scores[name].value is None
        assert "x.ckpt" in scores[name].detail


def test_no_model_at_all_is_unavailable(monkeypatch):
    def no_profanity_check():
        raise toxicity_module.ModelUnavailableError("alt-profanity-check", "not installed")

    monkeypatch.setattr(toxicity_module, "ProfanityCheckModel", no_profanity_check)
    monkeypatch.setattr(toxicity_module, "cached_detoxify", lambda model_type: None)
    [scores] = _scores(ToxicityScorer(), ["hello"])
    assert scores["toxicity"].status == "unavailable" and scores["toxicity"].value is None
    assert "alt-profanity-check" in scores["toxicity"].detail
    assert "Detoxify" in scores["toxicity"].detail


def test_missing_answer_is_not_applicable():
    scorer = ToxicityScorer(ToxicityConfig(backend="profanity-check"))
    [results] = scorer.score([make_call("hello there", None)])
    by_name = {r.name: r for r in results}
    assert by_name["toxicity"].status == "not_applicable"
    assert by_name["prompt_toxicity"].status == "ok"


def test_each_distinct_text_of_a_batch_is_scored_once():
    """A question asked again and an answer given again in one micro-batch go to the model
    once; every call still gets its own scores, in place."""

    class Recording:
        backend = "recording"

        def __init__(self) -> None:
            self.seen: list[str] = []

        def predict(self, texts: list[str]) -> list[tuple[float, str | None]]:
            self.seen.extend(texts)
            return [(len(t) / 100, None) for t in texts]

    model = Recording()
    scorer = ToxicityScorer(ToxicityConfig(), model=model)
    calls = [make_call("where is my parcel?", "It ships today.", call_id="a"),
             make_call("where is my parcel?", "It shipped yesterday.", call_id="b"),
             make_call("cancel it", "It ships today.", call_id="c")]
    results = [{r.name: r.value for r in rs} for rs in scorer.score(calls)]
    assert sorted(model.seen) == sorted({"where is my parcel?", "It ships today.", "It shipped yesterday.",
                                         "cancel it"})
    assert results == [{"toxicity": 0.15, "prompt_toxicity": 0.19},
                       {"toxicity": 0.21, "prompt_toxicity": 0.19},
                       {"toxicity": 0.15, "prompt_toxicity": 0.09}]
