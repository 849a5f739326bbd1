"""Tiny text models for the model tests, built from configs and saved to disk.

Each is saved with ``save_pretrained`` to a session temp directory and loaded
back by path, the same code path a hub id takes. The vocabulary is written by
hand (special tokens + a few words + every ASCII character and its ``##``
form), so any ASCII text tokenises without ``[UNK]``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .builders import write_vocab


@pytest.fixture(autouse=True, scope="session")
def _quiet_offline_transformers():
    """No network, no LOAD REPORT tables or progress bars."""
    import huggingface_hub.constants as hub_constants
    import transformers

    old_offline = hub_constants.HF_HUB_OFFLINE
    old_verbosity = transformers.utils.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    hub_constants.HF_HUB_OFFLINE = True
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    yield
    hub_constants.HF_HUB_OFFLINE = old_offline
    transformers.utils.logging.set_verbosity(old_verbosity)
    if bars:
        transformers.utils.logging.enable_progress_bar()


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory) -> Path:
    """A directory holding a tiny DistilBertModel (dim 32) and its tokenizer."""
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizer

    d = tmp_path_factory.mktemp("tiny-distilbert")
    vocab = write_vocab(d / "vocab.txt")
    tok = DistilBertTokenizer(vocab=str(vocab), model_max_length=64)
    cfg = DistilBertConfig(
        vocab_size=len(tok), dim=32, hidden_dim=37, n_layers=2, n_heads=4, max_position_embeddings=64,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    DistilBertModel(cfg).save_pretrained(str(d))
    tok.save_pretrained(str(d))
    return d


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A directory holding a tiny BertModel (hidden 48: a width unlike the others) and its tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizer

    d = tmp_path_factory.mktemp("tiny-bert")
    vocab = write_vocab(d / "vocab.txt")
    tok = BertTokenizer(vocab=str(vocab), model_max_length=64)
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=48, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=64, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(1)
    BertModel(cfg).save_pretrained(str(d))
    tok.save_pretrained(str(d))
    return d


@pytest.fixture(scope="session")
def distil_tok(tiny_distilbert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_distilbert))


@pytest.fixture(scope="session")
def bert_tok(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_bert))


@pytest.fixture
def one_thread():
    """Tiny models train faster and steadier on one thread: with two threads on a shared 2-core machine,
    thread synchronisation can make a millisecond step 30x slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
