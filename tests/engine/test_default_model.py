"""The embedded default model (engine/default_model): shipped in the package, used when no model
is named, listed by `scribe models`, and writing English. Real files, real subprocesses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from scribe.engine import paths
from scribe.engine.runtime import model_files, models

DEFAULT = model_files.DEFAULT_MODEL_DIR
ROOT = Path(__file__).resolve().parents[2]
MAX_MODEL_BYTES = 40 * 1024 * 1024


def words_of(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Za-z]+(?:'[a-z]+)?", text)]


@pytest.fixture(scope="module")
def vocabulary() -> set[str]:
    """The corpus word list shipped beside the model (build_corpus.py writes it)."""
    return set((DEFAULT / "words.txt").read_text(encoding="utf-8").split())


def test_the_package_ships_a_complete_model_folder() -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "scribe.json",
        "generation_config.json",
        "words.txt",
        "__init__.py",
    ):
        assert (DEFAULT / name).is_file(), name
    model_files.check_folder(DEFAULT)  # the loader's own checks: tokenizer, complete safetensors
    config = json.loads((DEFAULT / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "gpt2"
    assert config["n_positions"] == 1024
    total = sum(f.stat().st_size for f in DEFAULT.iterdir() if f.is_file())
    assert total <= MAX_MODEL_BYTES, f"{total} bytes of model files"


def test_weights_are_fp16_safetensors() -> None:
    data = (DEFAULT / "model.safetensors").read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert dtypes == {"F16"}


PERMISSIVE = (
    "PSF",
    "MIT",
    "BSD",
    "Apache",
    "PostgreSQL",
    "Public domain",
    "permissive",
    "CC-BY-4.0",
)


def test_card_records_sources_licences_commands_tokens_and_scores() -> None:
    card = json.loads((DEFAULT / "scribe.json").read_text(encoding="utf-8"))
    assert card["method"] == "from scratch"
    # Short blocks from scratch (and continued, when it was), then the decay on 1024-token blocks.
    first, *stable, decay = card["commands"]
    assert first.startswith("scribe finetune ") and "--from-scratch" in first
    assert all("--block-size 256" in c and "--model" in c for c in stable)
    assert "--block-size 1024" in decay and "--fim" in decay
    assert len(card["phases"]) == len(card["commands"])
    sources = card["corpus"]["sources"]
    assert {s["name"] for s in sources} >= {"python3.11-doc", "python-stdlib", "pypi-code"}
    assert {"prose", "code"} == {s["kind"] for s in sources}
    for source in sources:
        licence = source["licence"]
        # Share-alike and copyleft text only where the card says so, in the source and the
        # description both.
        named = [word for word in ("share-alike", "copyleft") if word in licence]
        assert any(word in licence for word in PERMISSIVE) or named, source
        assert all(word in card["description"] for word in named), (source, card["description"])
        assert source["package"]
    held_out = card["held_out_bpb"]["model"]
    assert 0 < held_out["prose"] < 1.8 and 0 < held_out["code"] < 2.0
    assert card["fim"]["format"] == "psm"
    tokens = card["data"]["tokens"]
    assert tokens["train"] > 1_000_000 and tokens["test"] > 10_000
    ppl = card["metrics"]["test_perplexity_after"]
    assert 1 < ppl < card["metrics"]["test_perplexity_before"]


def test_packaging_lists_the_folder_and_its_files() -> None:
    """Every shipped file matches the package-data patterns, so the wheel carries it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = project["tool"]["setuptools"]
    assert "scribe.engine.default_model" in setuptools["packages"]
    patterns = setuptools["package-data"]["scribe.engine.default_model"]
    for file in DEFAULT.iterdir():
        if file.is_file() and file.suffix != ".py":
            assert any(fnmatch(file.name, p) for p in patterns), file.name


def test_used_when_no_model_is_named_and_none_configured() -> None:
    assert not paths.config_file().exists()
    assert model_files.default_model_spec() == str(DEFAULT)
    assert model_files.resolve(None) == DEFAULT


def test_configured_default_model_wins(tiny_model_dir: Path) -> None:
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(f'default_model = "{tiny_model_dir}"\n', encoding="utf-8")
    assert model_files.resolve(None) == tiny_model_dir


def test_the_name_default_is_the_embedded_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scribe models` lists it as "default", so --model default means it (never the hub),
    unless a folder of that name is there."""
    import io

    from scribe.tui.cli import main

    assert model_files.resolve("default") == DEFAULT
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"Once upon a time")))
    assert main(["complete", "--model", "default", "--max-tokens", "3", "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip()
    mine = paths.models_dir() / "default"
    mine.mkdir(parents=True)
    assert model_files.resolve("default") == mine
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").mkdir()
    assert model_files.resolve("default") == Path("default")


def test_loads_through_the_engine_and_round_trips_text() -> None:
    loaded = models.load(None)
    assert loaded.name == "default"
    assert loaded.n_positions == 1024
    text = "It was a dark and stormy night; the rain fell in torrents."
    tok = loaded.tokenizer
    assert tok.decode(tok.encode(text)) == text
    assert loaded.eos_token_id is not None


def test_scribe_models_lists_it_as_the_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scribe.tui.cli import main

    monkeypatch.setenv("COLUMNS", "200")  # rich shortens cells to fit 80 columns
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "default (default)" in out and "embedded" in out and str(DEFAULT) in out


@pytest.mark.slow
def test_complete_with_no_model_prints_english_words(vocabulary: set[str]) -> None:
    """The README's promise: `echo 'It was a dark and stormy night' | scribe complete`."""
    result = subprocess.run(
        f"echo 'It was a dark and stormy night' | {sys.executable} -m scribe.tui.cli complete "
        "--seed 1 --max-tokens 100",
        shell=True,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    words = words_of(result.stdout.decode())
    assert len(words) >= 20, words
    known = [w for w in words if w in vocabulary]
    assert len(known) / len(words) >= 0.8, [w for w in words if w not in vocabulary]
    # Real words, not only "the", "and", "of": an untrained model's fragments fail this.
    assert len({w for w in known if len(w) >= 4}) >= 6, words


def test_greedy_continuation_of_the_readme_prompt_is_text_not_blanks() -> None:
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.options import GenerationOptions

    generator = Generator(models.load(None))
    options = GenerationOptions(max_new_tokens=60, temperature=0.0)
    text = generator.complete_text("It was a dark and stormy night\n", options)
    assert len(words_of(text)) >= 10, repr(text)


@pytest.mark.slow
@pytest.mark.parametrize("template", ["summarize", "fix-grammar", "title", "rewrite", "expand"])
def test_every_answering_template_answers_on_the_default_model(
    template: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from scribe.tui.cli import main

    text = (
        "A virtual environment keeps the packages of one project apart from those of another, "
        "so upgrading a library for one project never breaks another.\n"
    )
    stdin = io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["complete", "-t", template, "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip()


def test_greedy_continuation_is_english(vocabulary: set[str]) -> None:
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.options import GenerationOptions

    generator = Generator(models.load(None))
    options = GenerationOptions(max_new_tokens=40, temperature=0.0)
    text = generator.complete_text("To install the package, run the following command", options)
    words = words_of(text)
    assert len(words) >= 10
    assert sum(w in vocabulary for w in words) / len(words) >= 0.9, words
