"""Issue 23, exports, privacy and derived caches: an export never replaces a user's file unasked,
what scribe writes is owner-only and its logs name no documents, a derived cache is stamped
from the weights it was built from and verified when opened, int4 falls back where its graph
cannot run or be cached, and a LoRA merge is peft's merge or a clear refusal."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from scribe.engine import paths
from scribe.engine.runtime import derived_weights, lora_merge, onnx_int4
from scribe.engine.runtime.generation import Generator
from scribe.engine.runtime.models import load, quiet_transformers
from tests import factory
from tests.tui.cli_run import SCRIBE, Cli, one_error, scribe

pytestmark = pytest.mark.slow  # subprocess exports, int4 graph builds and peft merges

needs_onnxruntime = pytest.mark.skipif(
    not onnx_int4.available(), reason="onnxruntime is not installed"
)
INT4 = ["--precision", "int4", "--temperature", "0", "--max-tokens", "8"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def warnings_in(err: str) -> list[str]:
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert all(line.startswith("scribe: warning: ") for line in lines), err
    return lines


# -- export ------------------------------------------------------------------------------------
def test_export_keeps_the_users_modelfile_unless_forced(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "Modelfile").write_text("FROM llama3\n# my own\n")
    proc = scribe("export", str(tiny_model_dir), "--out", f"{out}/")
    assert proc.returncode != 0
    one_error(proc.stderr.decode(), "Modelfile", "already exists", "--force")
    assert (out / "Modelfile").read_text() == "FROM llama3\n# my own\n"
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile"]  # no GGUF, no part left

    proc = scribe("export", str(tiny_model_dir), "--out", f"{out}/", "--force")
    assert proc.returncode == 0, proc.stderr.decode()
    gguf = out / "tiny-model0-f16.gguf"
    assert (out / "Modelfile").read_text().startswith(f"FROM ./{gguf.name}")
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", gguf.name]
    # An export of a private model is private: owner-only, whatever the umask.
    assert mode(gguf) == mode(out / "Modelfile") == 0o600

    before = gguf.read_bytes()
    (out / "Modelfile").unlink()
    proc = scribe("export", str(tiny_model_dir), "--out", str(gguf), "--quant", "q8_0")
    one_error(proc.stderr.decode(), str(gguf), "already exists")
    assert gguf.read_bytes() == before and not (out / "Modelfile").exists()


# -- logs --------------------------------------------------------------------------------------
REQUEST = {"id": 1, "prefix": "My secret diary says", "document": "/home/me/diary/private.md"}


def serve(home: Path, model: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SCRIBE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    line = json.dumps({**REQUEST, "max_tokens": 4}).encode() + b"\n"
    return subprocess.run(
        [*SCRIBE, "serve", "--model", str(model), *flags],
        input=line,
        capture_output=True,
        timeout=120,
        env=env,
    )


def test_the_servers_log_is_private_and_names_no_document(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    proc = serve(home, tiny_model_dir)
    assert proc.returncode == 0 and b'"text"' in proc.stdout, proc.stderr.decode()
    log = home / "cache" / "serve.log"
    text = log.read_text(encoding="utf-8")
    assert "served a document" in text
    assert "diary" not in text and "secret" not in text
    assert mode(log) == 0o600 and mode(home / "cache") == 0o700
    # Asked for: the document's path is logged.
    proc = serve(home, tiny_model_dir, "--log-prompts")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "served /home/me/diary/private.md" in log.read_text(encoding="utf-8")


def test_serve_with_an_unusable_cache_dir_logs_to_stderr(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "cache").write_text("a file where the cache dir belongs")
    proc = serve(home, tiny_model_dir)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout.decode().splitlines()[0]).get("text") is not None
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert err.startswith("scribe: warning: cannot write the log ") and "stderr" in err


# -- the int4 cache ----------------------------------------------------------------------------
@needs_onnxruntime
def test_weights_changed_during_the_int4_build_are_not_stamped(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = factory.tiny_model(tmp_path / "model", seed=1)
    build = onnx_int4.build

    def build_while_the_weights_change(*args: object) -> None:
        build(*args)  # type: ignore[arg-type]
        quiet_transformers()  # its progress bar is the test's, not scribe's
        factory.tiny_model(model, seed=2)  # a finetune saved new weights meanwhile

    monkeypatch.setattr(onnx_int4, "build", build_while_the_weights_change)
    code, _, err = cli("complete", "--model", str(model), *INT4)
    assert code == 0
    assert "changed while the int4 graph was built" in warnings_in(err)[0]
    assert onnx_int4.cached(model) is None  # the old model's graph is not served from now on
    monkeypatch.setattr(onnx_int4, "build", build)
    code, again, err = cli("complete", "--model", str(model), *INT4)
    assert (code, err) == (0, "") and onnx_int4.cached(model) is not None
    fresh = factory.tiny_model(tmp_path / "fresh", seed=2)  # the new weights, built anew
    code, expected, _ = cli("complete", "--model", str(fresh), *INT4)
    assert again == expected


@needs_onnxruntime
def test_a_damaged_int4_cache_is_found_when_opened_and_rebuilt_with_a_notice(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    args = ["complete", "--model", str(model), *INT4]
    first = scribe(*args, stdin=b"The quick brown fox")
    assert first.returncode == 0 and first.stderr == b""
    graph = onnx_int4.cache_path(model)
    assert mode(graph) == 0o600
    data = onnx_int4.data_path(graph)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2 :] = bytes(len(raw) - len(raw) // 2)  # same size, zeroed weights
    data.write_bytes(bytes(raw))
    again = scribe(*args, stdin=b"The quick brown fox")
    assert again.returncode == 0
    notice = warnings_in(again.stderr.decode())
    assert len(notice) == 1 and "int4 cache" in notice[0] and "damaged" in notice[0]
    assert again.stdout == first.stdout and onnx_int4.cached(model) == graph


def test_int4_on_heads_not_a_multiple_of_8_falls_back_with_a_notice(tmp_path: Path) -> None:
    """scribe's own `--from-scratch 1x136` makes two heads of 68."""
    model = factory.save_model(
        tmp_path / "m136", factory.tiny_tokenizer(), n_layer=1, n_head=2, n_embd=136,
        n_positions=64,
    )  # fmt: skip
    proc = scribe("complete", "--model", str(model), *INT4, stdin=b"The quick brown fox")
    assert proc.returncode == 0 and proc.stdout
    if onnx_int4.available():
        (notice,) = warnings_in(proc.stderr.decode())
        assert "int4" in notice and "68" in notice and "multiple of 8" in notice
    else:
        assert proc.stderr == b""


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_int4_runs_uncached_where_no_cache_can_be_written(
    cli: Cli,
    tiny_model_dir: Path,
    tmp_path: Path,
    scribe_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    precision: str,
) -> None:
    """A read-only model folder (os.access says so; the tests may run as root, whom chmod does
    not stop) and a cache dir that is a file."""
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    (scribe_home / "cache").write_text("not a folder")
    real_access = os.access
    monkeypatch.setattr(
        derived_weights.os, "access", lambda p, m: False if Path(p) == model else real_access(p, m)
    )
    code, out, err = cli("complete", "--model", str(model), *INT4[2:], "--precision", precision)
    assert (code, err) == (0, "") and out
    assert sorted(p.name for p in model.iterdir()) == sorted(
        p.name for p in tiny_model_dir.iterdir()
    )


# -- LoRA merges -------------------------------------------------------------------------------
def peft_lora(base: Path, folder: Path, **config: object) -> Path:
    """A peft LoRA on the tiny GPT-2 with non-zero B (and lora_B biases when asked)."""
    import peft
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base)
    settings = {"r": 4, "lora_alpha": 8, "target_modules": ["c_attn", "c_proj", "c_fc"]}
    adapter = peft.get_peft_model(model, peft.LoraConfig(**{**settings, **config}))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in adapter.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    adapter.peft_config["default"].base_model_name_or_path = str(base)
    adapter.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


def peft_logits(adapter: Path, ids: list[int]) -> torch.Tensor:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = json.loads((adapter / "adapter_config.json").read_text())
    base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"])
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload().eval()
    with torch.no_grad():
        return merged(torch.tensor([ids])).logits[0, -1]


@pytest.mark.parametrize(
    "fields",
    [
        {"alpha_pattern": {"c_attn": 32, r"h\.1\.mlp\.c_proj": 2}},
        {"rank_pattern": {"c_fc": 2, r"h\.0\.attn\.c_attn": 6}, "alpha_pattern": {"c_fc": 16}},
        {"lora_bias": True},
        {"use_rslora": True, "rank_pattern": {"c_proj": 2}, "lora_alpha": 5},
    ],
    ids=["alpha_pattern", "rank_pattern", "lora_bias", "rslora"],
)
def test_the_lora_merge_is_peft_s(
    tiny_model_dir: Path, tmp_path: Path, fields: dict[str, object]
) -> None:
    adapter = peft_lora(tiny_model_dir, tmp_path / "lora", **fields)
    loaded = load(str(adapter))
    assert loaded.weights is not None  # the fast path merged it
    gen = Generator(loaded)
    ids = gen.encode("The quick brown fox jumps over the lazy dog.")
    ours = torch.from_numpy(gen.next_logits(ids))
    theirs = peft_logits(adapter, ids)
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()
    plain = torch.from_numpy(Generator(load(str(tiny_model_dir))).next_logits(ids))
    assert not torch.allclose(ours, plain, atol=1e-3)  # the adapter changed the model


def test_a_lora_config_whose_r_disagrees_with_its_tensors_is_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    adapter = peft_lora(tiny_model_dir, tmp_path / "lora")
    config_file = adapter / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "r": 2}))
    proc = scribe("complete", "--model", str(adapter), "--max-tokens", "2", stdin=b"The")
    assert proc.returncode == 1
    one_error(proc.stderr.decode(), "rank 4", "r = 2", "adapter_config.json")


def test_a_new_adapter_version_replaces_its_older_merge(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    adapter = peft_lora(tiny_model_dir, tmp_path / "lora")
    other = peft_lora(tiny_model_dir, tmp_path / "other")
    load(str(other))
    for seed in (1, 2, 3):  # three versions of one adapter, as finetune --resume saves them
        weights = adapter / "adapter_model.safetensors"
        tensors = {k: v + 0.01 * seed for k, v in load_file(str(weights)).items()}
        save_file(tensors, str(weights), metadata={"format": "pt"})
        assert load(str(adapter)).weights is not None
    merged = sorted((paths.cache_dir() / "merged").rglob(lora_merge.MERGED_FILE))
    assert len(merged) == 2  # the newest of `adapter`, and `other`'s own
    assert all(mode(file) == 0o600 for file in merged)


def test_a_lora_merges_for_this_run_where_the_cache_dir_is_unusable(
    tiny_model_dir: Path, tmp_path: Path, scribe_home: Path
) -> None:
    adapter = peft_lora(tiny_model_dir, tmp_path / "lora")
    (scribe_home / "cache").write_text("not a folder")
    proc = scribe("complete", "--model", str(adapter), "--max-tokens", "3", stdin=b"The")
    assert (proc.returncode, proc.stderr) == (0, b"") and proc.stdout
