"""`python -m minibert`: the README's main command, on a local checkpoint (the hub is unreachable in tests)."""

import json
import os
import subprocess
import sys

import transformers


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "minibert", *args], capture_output=True, text=True, env=env)


def test_cli_prints_one_json_line_per_text_equal_to_transformers(small_ckpt):
    out = run("--model", str(small_ckpt), "I love it", "I hate it")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    want = transformers.pipeline("text-classification", model=str(small_ckpt))(["I love it", "I hate it"])
    assert [line["text"] for line in lines] == ["I love it", "I hate it"]
    for line, ref in zip(lines, want, strict=True):
        assert line["result"]["label"] == ref["label"]
        assert abs(line["result"]["score"] - ref["score"]) <= 1e-5


def test_cli_without_hub_or_cache_fails_with_one_clear_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    out = run(env=env)  # the default checkpoint, which is not in this empty cache
    assert out.returncode == 1
    assert "distilbert/distilbert-base-uncased-finetuned-sst-2-english" in out.stderr
    assert "local directory" in out.stderr
    assert "Traceback" not in out.stderr
