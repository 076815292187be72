"""Tests for minibert.hub.resolve_checkpoint. No test touches the network.

huggingface_hub reads HF_HOME / HF_HUB_CACHE / HF_HUB_OFFLINE / HF_ENDPOINT when it is imported, so every test
that depends on those runs resolve_checkpoint in a fresh Python process with the environment it needs. Those
processes always point HF_ENDPOINT at loopback: a port that refuses connections ("hub unreachable") or a small
in-process stub of the hub API, never at huggingface.co.

Caches are built by hand in huggingface_hub's real layout (models--org--name/{blobs,snapshots,refs}), and one
test checks that huggingface_hub itself recognises that layout, so the offline tests cannot pass on a fake.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from minibert import hub
from minibert.hub import (
    CHECKPOINT_FILES,
    DEFAULT_CHECKPOINT,
    DEFAULT_REVISION,
    CheckpointNotFoundError,
    resolve_checkpoint,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
LEGACY_DEFAULT = "distilbert-base-uncased-finetuned-sst-2-english"
OLD_SHA = "c0ffee" + "0123456789abcdef" * 2 + "ab"  # has letters, so .upper() really changes it
NEW_SHA = "fe" * 20
OTHER_MAIN_SHA = "9a" * 20  # what `main` of the default repo points to in the fake cache: NOT the pinned sha
# A call that really reaches the retry/backoff path of huggingface_hub takes ~25 s; everything here must not.
FAST_SECONDS = 5.0


def checkpoint_files(tag: str) -> dict[str, bytes]:
    """A minimal, distinguishable DistilBERT-like checkpoint (content is irrelevant to hub.py)."""
    config = {"model_type": "distilbert", "dim": 8, "_tag": tag}
    return {
        "config.json": json.dumps(config).encode(),
        "model.safetensors": b"fake safetensors " + tag.encode(),
        "vocab.txt": b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n",
        "tokenizer_config.json": b'{"do_lower_case": true}',
    }


def make_cached_repo(
    cache: Path, repo_id: str, commit: str, files: dict[str, bytes], refs: tuple[str, ...] = ("main",)
) -> Path:
    """Write ``files`` at ``commit`` in huggingface_hub's cache layout; return the snapshot directory.

    blobs/<etag> holds the content (etag = sha256 for LFS files like *.safetensors, git blob sha1 otherwise),
    snapshots/<commit>/<file> are relative symlinks into blobs/, refs/<branch> contains the commit sha.
    """
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    for name, data in files.items():
        if name.endswith((".safetensors", ".bin", ".h5", ".onnx")):
            etag = hashlib.sha256(data).hexdigest()
        else:
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        blob = repo_dir / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        pointer = snapshot / name
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    for ref in refs:
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        (repo_dir / "refs" / ref).write_text(commit)  # no trailing newline, exactly like huggingface_hub
    return snapshot


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it) but never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


# Loads hub.py by path, so these tests neither depend on nor pay for whatever minibert/__init__ imports.
_CHILD = r"""
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("minibert_hub_under_test", sys.argv[2])
hub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hub)
out = []
for args, kwargs in json.loads(sys.argv[1]):
    start = time.monotonic()
    try:
        result = {"path": str(hub.resolve_checkpoint(*args, **kwargs))}
    except Exception as e:
        cause = e.__cause__
        result = {"error": type(e).__name__, "message": str(e), "cause": type(cause).__name__ if cause else None}
    result["seconds"] = time.monotonic() - start
    out.append(result)
print("RESULT " + json.dumps(out))
"""


def run_resolve(home: Path, env: dict[str, str], *calls: tuple) -> list[dict]:
    """Run resolve_checkpoint(*args, **kwargs) for each (args[, kwargs]) call in a fresh interpreter.

    HF_* variables of the outer environment are dropped, HF_HOME is ``home`` (cache: home/hub, no token),
    HF_ENDPOINT defaults to a loopback port (never huggingface.co), and ``env`` is applied last.
    """
    child_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGINGFACE_")) and k not in ("TRANSFORMERS_OFFLINE", "XDG_CACHE_HOME")
    }
    child_env.update(
        HF_HOME=str(home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_ENDPOINT="http://127.0.0.1:9",  # discard port: belt and braces for the offline-mode children
    )
    child_env.update(env)
    payload = json.dumps([[list(c[0]), c[1] if len(c) > 1 else {}] for c in calls])
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, payload, hub.__file__],
        env=child_env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"child failed:\n{proc.stdout}\n{proc.stderr}"
    results = json.loads(lines[-1][len("RESULT ") :])
    assert len(results) == len(calls)
    return results


def assert_path(result: dict, expected: Path) -> None:
    assert "path" in result, f"expected {expected}, got {result}"
    assert Path(result["path"]).resolve() == expected.resolve()
    assert result["seconds"] < FAST_SECONDS, result


def assert_not_found(result: dict, *phrases: str, cause: str | None = None) -> str:
    assert result.get("error") == "CheckpointNotFoundError", result
    for phrase in phrases:
        assert phrase in result["message"], f"{phrase!r} not in:\n{result['message']}"
    if cause is not None:
        assert result["cause"] == cause, result
    assert result["seconds"] < FAST_SECONDS, result
    return result["message"]


def config_tag(snapshot: Path) -> str:
    return json.loads((snapshot / "config.json").read_text())["_tag"]


# --------------------------------------------------------------------------------------------- the cache


def test_hand_built_cache_is_recognised_by_huggingface_hub(tmp_path: Path) -> None:
    from huggingface_hub import scan_cache_dir, try_to_load_from_cache

    cache = tmp_path / "hub"
    old = make_cached_repo(cache, "org/tiny", OLD_SHA, checkpoint_files("old"), refs=())
    new = make_cached_repo(cache, "org/tiny", NEW_SHA, checkpoint_files("new"))

    info = scan_cache_dir(cache)
    assert not info.warnings
    [repo] = info.repos
    assert (repo.repo_id, repo.repo_type) == ("org/tiny", "model")
    revisions = {r.commit_hash: r for r in repo.revisions}
    assert set(revisions) == {OLD_SHA, NEW_SHA}
    assert revisions[NEW_SHA].refs == frozenset({"main"})
    assert {f.file_name for f in revisions[OLD_SHA].files} == set(checkpoint_files("old"))

    # Blob symlinks resolve, refs/main is followed.
    assert try_to_load_from_cache("org/tiny", "config.json", cache_dir=cache) == str(new / "config.json")
    found = try_to_load_from_cache("org/tiny", "vocab.txt", cache_dir=cache, revision=OLD_SHA)
    assert found == str(old / "vocab.txt")
    assert config_tag(old) == "old" and config_tag(new) == "new"


# --------------------------------------------------------------------------------------------- offline


def test_offline_resolves_cached_revisions(tmp_path: Path) -> None:
    cache = tmp_path / "home" / "hub"  # default cache location under HF_HOME
    old = make_cached_repo(cache, "org/tiny", OLD_SHA, checkpoint_files("old"), refs=())
    new = make_cached_repo(cache, "org/tiny", NEW_SHA, checkpoint_files("new"))
    make_cached_repo(cache, DEFAULT_CHECKPOINT, OTHER_MAIN_SHA, checkpoint_files("default-main"))
    pinned = make_cached_repo(cache, DEFAULT_CHECKPOINT, DEFAULT_REVISION, checkpoint_files("pinned"), refs=())

    results = run_resolve(
        tmp_path / "home",
        {"HF_HUB_OFFLINE": "1"},
        (["org/tiny"],),  # revision=None -> refs/main
        (["org/tiny", "main"],),
        (["org/tiny", OLD_SHA],),  # explicit full sha, not referenced by any ref
        (["org/tiny", OLD_SHA.upper()],),
        ([DEFAULT_CHECKPOINT],),  # pinned, although refs/main points elsewhere
        ([LEGACY_DEFAULT],),  # legacy id -> same pinned revision
        ([DEFAULT_CHECKPOINT, "main"],),  # an explicit revision wins over the pin
    )
    default_main = cache / ("models--" + DEFAULT_CHECKPOINT.replace("/", "--")) / "snapshots" / OTHER_MAIN_SHA
    for result, expected in zip(results, [new, new, old, old, pinned, pinned, default_main], strict=True):
        assert_path(result, expected)

    assert config_tag(Path(results[0]["path"])) == "new"
    assert config_tag(Path(results[2]["path"])) == "old"
    assert config_tag(Path(results[4]["path"])) == "pinned"
    assert (Path(results[4]["path"]) / "vocab.txt").read_bytes() == checkpoint_files("x")["vocab.txt"]


def test_offline_uncached_gives_one_clear_error(tmp_path: Path) -> None:
    make_cached_repo(tmp_path / "home" / "hub", "org/tiny", NEW_SHA, checkpoint_files("new"))
    missing, default, other_rev = run_resolve(
        tmp_path / "home",
        {"HF_HUB_OFFLINE": "1"},
        (["org/missing"],),
        ([DEFAULT_CHECKPOINT],),
        (["org/tiny", OLD_SHA],),  # repo cached, but not at this revision
    )
    message = assert_not_found(
        missing,
        "'org/missing'",
        "offline mode",
        "local directory",
        'model="/path/to/dir"',
        "config.json",
        cause="LocalEntryNotFoundError",
    )
    assert str(tmp_path / "home" / "hub") in message  # says which cache was searched
    assert_not_found(default, DEFAULT_CHECKPOINT, DEFAULT_REVISION, "offline mode", "local directory")
    assert_not_found(other_rev, "'org/tiny'", OLD_SHA, "offline mode")


def test_hf_hub_cache_env_var_and_legacy_cache_folder(tmp_path: Path) -> None:
    # Only the legacy spelling is cached, outside HF_HOME: both ids must find it through HF_HUB_CACHE.
    cache = tmp_path / "elsewhere"
    legacy = make_cached_repo(cache, LEGACY_DEFAULT, DEFAULT_REVISION, checkpoint_files("legacy"))
    make_cached_repo(tmp_path / "home" / "hub", "org/tiny", NEW_SHA, checkpoint_files("home"))
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    by_legacy, by_canonical, home_only = run_resolve(
        tmp_path / "home", env, ([LEGACY_DEFAULT],), ([DEFAULT_CHECKPOINT],), (["org/tiny"],)
    )
    assert_path(by_legacy, legacy)
    assert_path(by_canonical, legacy)
    assert config_tag(legacy) == "legacy"
    assert_not_found(home_only, "'org/tiny'", str(cache))  # HF_HUB_CACHE wins over HF_HOME/hub


# --------------------------------------------------------------------------------------------- hub unreachable


def test_unreachable_hub_falls_back_to_cache_fast(tmp_path: Path, closed_port: int) -> None:
    cache = tmp_path / "home" / "hub"
    old = make_cached_repo(cache, "org/tiny", OLD_SHA, checkpoint_files("old"), refs=())
    new = make_cached_repo(cache, "org/tiny", NEW_SHA, checkpoint_files("new"))
    pinned = make_cached_repo(cache, DEFAULT_CHECKPOINT, DEFAULT_REVISION, checkpoint_files("pinned"))
    partial = make_cached_repo(cache, "org/partial", OLD_SHA, {"config.json": b"{}"})

    results = run_resolve(
        tmp_path / "home",
        {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port}"},
        (["org/tiny"],),
        (["org/tiny", OLD_SHA],),
        ([DEFAULT_CHECKPOINT],),
        ([LEGACY_DEFAULT],),
        (["org/missing"],),
        ([DEFAULT_CHECKPOINT, NEW_SHA],),  # uncached commit: fails fast too (no ~25 s retry loop)
        (["org/partial", OLD_SHA],),  # incomplete, hub unreachable: use what is there, like snapshot_download
    )
    assert_path(results[0], new)
    assert_path(results[1], old)
    assert_path(results[2], pinned)
    assert_path(results[3], pinned)
    assert_not_found(
        results[4],
        "'org/missing'",
        "could not be reached",
        "local directory",
        'model="/path/to/dir"',
        cause="LocalEntryNotFoundError",
    )
    assert_not_found(results[5], DEFAULT_CHECKPOINT, NEW_SHA, "could not be reached", "local directory")
    assert_path(results[6], partial)


def test_local_files_only_and_cache_dir_keywords(tmp_path: Path) -> None:
    # In-process: the keywords bypass the import-time environment entirely.
    cache = tmp_path / "kw-cache"
    new = make_cached_repo(cache, "org/tiny", NEW_SHA, checkpoint_files("new"))
    assert resolve_checkpoint("org/tiny", cache_dir=cache, local_files_only=True) == new
    with pytest.raises(CheckpointNotFoundError, match="offline mode") as info:
        resolve_checkpoint("org/missing", cache_dir=cache, local_files_only=True)
    assert "org/missing" in str(info.value) and "local directory" in str(info.value)


# --------------------------------------------------------------------------------------------- stub hub


class StubHub:
    """Just enough of the hub HTTP API for snapshot_download: repo info, tree listing, file HEAD/GET."""

    def __init__(self, repos: dict[str, tuple[str, dict[str, bytes]]]) -> None:
        self.repos = repos  # repo_id -> (commit sha, files)
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                stub.handle(self, body=False)

            def do_GET(self) -> None:
                stub.handle(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def handle(self, req: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(req.path).path)
        self.requests.append(f"{req.command} {path}")
        repo_pattern = r"(?P<repo>[^/]+(?:/[^/]+)?)"
        api = re.fullmatch(rf"/api/models/{repo_pattern}/(?P<kind>revision|tree)/(?P<rev>[^/]+)(?:/.*)?", path)
        resolve = re.fullmatch(rf"/{repo_pattern}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)
        match = api or resolve
        if match is None or match["repo"] not in self.repos:
            return self.send(req, 404, b"{}", {"X-Error-Code": "RepoNotFound"}, body)
        sha, files = self.repos[match["repo"]]
        if match["rev"] not in ("main", sha):
            return self.send(req, 404, b"{}", {"X-Error-Code": "RevisionNotFound"}, body)
        if api is not None and api["kind"] == "revision":
            info = {"id": match["repo"], "sha": sha, "siblings": [{"rfilename": f} for f in files]}
            return self.send(req, 200, json.dumps(info).encode(), {}, body)
        if api is not None:
            tree = [
                {"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                for f, d in files.items()
            ]
            return self.send(req, 200, json.dumps(tree).encode(), {}, body)
        if match["file"] not in files:
            return self.send(req, 404, b"{}", {"X-Error-Code": "EntryNotFound"}, body)
        data = files[match["file"]]
        headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": sha}
        return self.send(req, 200, data, headers, body)

    @staticmethod
    def send(req: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
        req.send_response(status)
        for key, value in {"Content-Length": str(len(data)), **headers}.items():
            req.send_header(key, value)
        req.end_headers()
        if body:
            req.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_hub() -> Iterator[StubHub]:
    files = {
        **checkpoint_files("stub"),
        "pytorch_model.bin": b"torch weights: must never be downloaded",
        "tf_model.h5": b"tf weights",
        "onnx/model.onnx": b"onnx",
        "onnx/config.json": b"{}",
        "README.md": b"# card",
    }
    stub = StubHub(
        {
            "org/tiny": (NEW_SHA, files),
            "org/bin-only": (OLD_SHA, {"pytorch_model.bin": b"w", "README.md": b"# card"}),
        }
    )
    yield stub
    stub.close()


def test_download_fetches_only_checkpoint_files(tmp_path: Path, stub_hub: StubHub) -> None:
    home = tmp_path / "home"
    [downloaded] = run_resolve(home, {"HF_ENDPOINT": stub_hub.url}, (["org/tiny"],))
    snapshot = home / "hub" / "models--org--tiny" / "snapshots" / NEW_SHA
    assert_path(downloaded, snapshot)
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(checkpoint_files("stub"))
    assert config_tag(snapshot) == "stub"
    fetched = [r for r in stub_hub.requests if "/resolve/" in r]
    assert fetched and not any(name in r for r in fetched for name in ("pytorch_model.bin", ".h5", "onnx"))

    # That download is a real cache entry: offline mode finds it, by branch and by commit.
    by_ref, by_sha = run_resolve(home, {"HF_HUB_OFFLINE": "1"}, (["org/tiny"],), (["org/tiny", NEW_SHA],))
    assert_path(by_ref, snapshot)
    assert_path(by_sha, snapshot)


def test_cached_commit_needs_no_request(tmp_path: Path, stub_hub: StubHub) -> None:
    pinned = make_cached_repo(tmp_path / "home" / "hub", DEFAULT_CHECKPOINT, DEFAULT_REVISION, checkpoint_files("p"))
    [result] = run_resolve(tmp_path / "home", {"HF_ENDPOINT": stub_hub.url}, ([DEFAULT_CHECKPOINT],))
    assert_path(result, pinned)
    assert stub_hub.requests == []


def test_incomplete_cached_commit_is_completed_from_the_hub(tmp_path: Path, stub_hub: StubHub) -> None:
    # e.g. an earlier download that only fetched config.json: the cache alone must not be trusted then.
    partial = make_cached_repo(tmp_path / "home" / "hub", "org/tiny", NEW_SHA, {"config.json": b'{"_tag": "p"}'})
    [result] = run_resolve(tmp_path / "home", {"HF_ENDPOINT": stub_hub.url}, (["org/tiny", NEW_SHA],))
    assert_path(result, partial)
    assert sorted(p.name for p in partial.iterdir()) == sorted(checkpoint_files("stub"))
    assert config_tag(partial) == "p"  # already-cached files are kept, not re-fetched
    assert any(r.endswith(f"/resolve/{NEW_SHA}/model.safetensors") for r in stub_hub.requests)
    assert not any(r.endswith("/config.json") for r in stub_hub.requests if "/resolve/" in r)


def test_hub_answers_become_clear_errors(tmp_path: Path, stub_hub: StubHub) -> None:
    no_repo, no_branch, no_commit, bin_only = run_resolve(
        tmp_path / "home",
        {"HF_ENDPOINT": stub_hub.url},
        (["org/nope"],),
        (["org/tiny", "no-such-branch"],),
        (["org/tiny", OLD_SHA],),
        (["org/bin-only"],),
    )
    assert_not_found(
        no_repo, "'org/nope'", "not found on the Hugging Face hub", "local directory", cause="RepositoryNotFoundError"
    )
    assert_not_found(no_branch, "'no-such-branch'", "does not exist", "'org/tiny'", cause="RevisionNotFoundError")
    assert_not_found(no_commit, OLD_SHA, "does not exist", cause="RevisionNotFoundError")
    assert_not_found(bin_only, "'org/bin-only'", "none of the files", "pytorch_model.bin", "local directory")


# --------------------------------------------------------------------------------------------- local paths


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests of argument handling must never get as far as huggingface_hub."""
    import huggingface_hub

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"unexpected hub access: {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", forbidden)
    monkeypatch.setattr(huggingface_hub, "HfApi", forbidden)


def test_local_directory_is_returned_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_hub: None) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"_tag": "local"}')
    assert resolve_checkpoint(str(ckpt)) == ckpt.resolve()
    assert resolve_checkpoint(ckpt, revision="ignored-for-local-dirs") == ckpt.resolve()

    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("ckpt") == ckpt.resolve()  # relative, and shaped like a repo id
    (tmp_path / "org" / "tiny").mkdir(parents=True)
    assert resolve_checkpoint("org/tiny") == (tmp_path / "org" / "tiny").resolve()  # local dir wins
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_checkpoint("~/ckpt") == ckpt.resolve()
    assert config_tag(resolve_checkpoint("ckpt")) == "local"


@pytest.mark.parametrize(
    "name",
    ["./missing", "../missing", "/definitely/not/here", "~/missing-ckpt", "a/b/c", "org/name/", Path("org/name")],
)
def test_missing_local_path_is_a_clear_error(
    name: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_hub: None
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointNotFoundError, match="does not exist") as info:
        resolve_checkpoint(name)
    assert str(name).rstrip("/") in str(info.value)


def test_file_instead_of_directory(tmp_path: Path, no_hub: None) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointNotFoundError, match="is a file, not a directory"):
        resolve_checkpoint(tmp_path / "config.json")


@pytest.mark.parametrize("name", ["", "   ", "double--dash", "dots..name", "with space", "-leading", "x.git"])
def test_invalid_repo_id(name: str, no_hub: None) -> None:
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_checkpoint(name)
    message = str(info.value)
    assert "Empty model name" in message if not name.strip() else "valid Hugging Face hub repo id" in message


@pytest.mark.parametrize(
    ("name", "revision", "type_name"),
    [
        (None, None, "NoneType"),
        (123, None, "int"),
        (b"org/tiny", None, "bytes"),
        (["org/tiny"], None, "list"),
        ("org/tiny", 7, "int"),
        ("org/tiny", b"main", "bytes"),
    ],
)
def test_wrong_types(name: object, revision: object, type_name: str, no_hub: None) -> None:
    with pytest.raises(TypeError, match=rf"\b{type_name}\b"):
        resolve_checkpoint(name, revision)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- constants


def test_public_constants() -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", DEFAULT_REVISION)
    assert DEFAULT_REVISION.startswith("714eb0f")  # what transformers' pipeline pins
    assert DEFAULT_CHECKPOINT == "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
    assert issubclass(CheckpointNotFoundError, OSError)
    from huggingface_hub.utils import filter_repo_objects

    repo = [
        "config.json",
        "model.safetensors",
        "model-00001-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "vocab.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
        "pytorch_model.bin",
        "tf_model.h5",
        "rust_model.ot",
        "onnx/model.onnx",
        "README.md",
        "map.jpeg",
    ]
    kept = list(filter_repo_objects(repo, allow_patterns=list(CHECKPOINT_FILES)))
    assert kept == repo[:11]


def test_transformers_pins_the_same_default() -> None:
    """DEFAULT_REVISION must match transformers' sentiment-analysis default, read from its source (no import)."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("transformers is not installed")
    source = (Path(next(iter(spec.submodule_search_locations))) / "pipelines" / "__init__.py").read_text()
    pins = re.findall(rf'"{re.escape(DEFAULT_CHECKPOINT)}",\s*"([0-9a-f]+)"', source)
    assert pins, "transformers no longer names DEFAULT_CHECKPOINT as a pipeline default"
    assert all(DEFAULT_REVISION.startswith(pin) for pin in pins), pins


def test_hub_module_imports_neither_torch_nor_huggingface_hub() -> None:
    # Load hub.py on its own (not via minibert/__init__, which other modules own) in a clean interpreter.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('hub_alone', {str(Path(hub.__file__))!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert 'huggingface_hub' not in sys.modules, 'huggingface_hub imported eagerly'\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "import minibert\n"
        "assert 'torch' not in sys.modules, 'import minibert imported torch'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
