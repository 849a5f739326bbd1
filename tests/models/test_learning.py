"""A learning sanity check: the label depends on the image features only.

The fusion teacher must learn it (it sees the image); the text-only model
must not beat chance on held-out samples (the texts carry no signal).
"""

from __future__ import annotations

import random
import time

import pytest
import torch

from lugpi_cli.models import FusionTeacher, TextClassifier

from .builders import WORDS

STEPS = 80
BATCH = 32


def synthetic(tok, n, *, seed):
    """Random texts; image tokens (n, 3, 16) whose CLS decides the label: y = [cls . w > 0]."""
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))) for _ in range(n)]
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(n, 3, 16, generator=g)
    w = torch.linspace(-1, 1, 16)
    labels = (image[:, 0] @ w > 0).long()
    batch = dict(tok(texts, padding=True, return_tensors="pt"))
    batch["image_tokens"] = image.half()
    return batch, labels


def fit(model, batch, labels, steps=STEPS):
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    n = labels.shape[0]
    for _ in range(steps):
        idx = torch.randint(0, n, (BATCH,))
        out = model({k: v[idx] for k, v in batch.items()})
        loss = torch.nn.functional.cross_entropy(out.logits, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def accuracy(model, batch, labels):
    with torch.no_grad():
        return (model(batch).logits.argmax(-1) == labels).float().mean().item()


@pytest.fixture
def one_thread():
    """Tiny models train faster and steadier on one thread when the machine is shared."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_fusion_learns_image_task_text_only_cannot(tiny_distilbert, distil_tok, one_thread):
    t0 = time.perf_counter()
    train, y_train = synthetic(distil_tok, 512, seed=0)
    test, y_test = synthetic(distil_tok, 400, seed=1)
    assert 0.4 < y_test.float().mean() < 0.6

    torch.manual_seed(0)
    teacher = FusionTeacher.from_pretrained(tiny_distilbert, 16, 2, hidden=32, ffn_dim=64, dropout=0.0)
    fit(teacher, train, y_train)
    acc_teacher = accuracy(teacher, test, y_test)

    torch.manual_seed(0)
    text_only = TextClassifier.from_pretrained(tiny_distilbert, 2)
    fit(text_only, train, y_train)
    acc_text = accuracy(text_only, test, y_test)

    elapsed = time.perf_counter() - t0
    assert acc_teacher > 0.85, (acc_teacher, acc_text, elapsed)
    assert acc_text < 0.65, (acc_teacher, acc_text, elapsed)
