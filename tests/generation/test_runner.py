"""Planning, dedup, resume, batch-size determinism, failures and shards of generate_dataset."""

from __future__ import annotations

import numpy as np
import pytest

from lugpi_cli.data.samples import Sample
from lugpi_cli.generation import GenerationConfig, generate_dataset, load_pipeline, plan_images
from lugpi_cli.generation.runner import count_truncated, recorded_failures
from lugpi_store import Store, decode, maintenance, seed_for

PROMPTS = ["a cat", "a dog", "a cat", "red house", "a dog", "blue sea", "old tree", "a cat", "small bird"]


def _samples(prompts=PROMPTS):
    return [Sample(f"s{i}", f"text {i}", p, i % 2, "train") for i, p in enumerate(prompts)]


@pytest.fixture(scope="module")
def pipe(tiny_models):
    import torch

    config = GenerationConfig(model=str(tiny_models["sd"]), steps=2, height=32, width=32, image_format="png")
    return config, load_pipeline(config, torch.device("cpu"), torch.float32)


class CountingFactory:
    def __init__(self, pipe):
        self.pipe, self.calls = pipe, 0

    def __call__(self):
        self.calls += 1
        return self.pipe


def _pixels(store: Store, key: bytes) -> np.ndarray:
    return np.asarray(decode(store.get_raw("images", key)).to_pil(), dtype=np.int16)


def test_plan_dedups_prompts_and_seeds_come_from_the_prompt():
    plan = plan_images(_samples(), "ab" * 32, base_seed=3)
    assert plan.prompts == ["a cat", "a dog", "red house", "blue sea", "old tree", "small bird"]
    assert plan.seeds == [seed_for(p, 3) for p in plan.prompts]
    assert plan.sample_keys["s0"] == plan.sample_keys["s2"] == plan.sample_keys["s7"]
    assert len(set(plan.keys)) == 6
    shards = [set(plan.shard(i, 3)) for i in range(3)]
    assert set().union(*shards) == set(range(6)) and sum(map(len, shards)) == 6
    reordered = plan_images(_samples(PROMPTS[::-1]), "ab" * 32, base_seed=3)
    assert dict(zip(reordered.prompts, reordered.keys)) == dict(zip(plan.prompts, plan.keys))


def test_generate_dedups_and_a_rerun_does_nothing(tmp_path, pipe):
    config, p = pipe
    store = Store(tmp_path / "s", create=True)
    factory = CountingFactory(p)
    first = generate_dataset(store, _samples(), config, factory, batch_size=4, dataset_name="toy")
    assert (first.samples, first.distinct_prompts, first.generated, first.reused, first.failed) == (9, 6, 6, 0, 0)
    assert store.count("images") == 6 and factory.calls == 1
    plan = plan_images(_samples(), config.fingerprint(), config.seed)
    assert store.contains_many("images", list(plan.sample_keys.values())) == [True] * 9
    image = decode(store.get_raw("images", plan.keys[0]))
    assert image.format == "png" and image.to_pil().size == (32, 32)
    second = generate_dataset(store, _samples(), config, factory, batch_size=4, dataset_name="toy")
    assert (second.generated, second.reused) == (0, 6) and factory.calls == 1  # the model is not even loaded
    assert store.get_meta("latest/generate/toy")["generator_fingerprint"] == config.fingerprint()


def test_images_do_not_depend_on_batch_size_or_order(tmp_path, pipe):
    config, p = pipe
    one = Store(tmp_path / "one", create=True)
    four = Store(tmp_path / "four", create=True)
    again = Store(tmp_path / "again", create=True)
    generate_dataset(one, _samples(), config, lambda: p, batch_size=1)
    generate_dataset(four, _samples(PROMPTS[::-1]), config, lambda: p, batch_size=4)
    generate_dataset(again, _samples(PROMPTS[::-1]), config, lambda: p, batch_size=4)
    keys = one.keys("images")
    assert keys == four.keys("images") == again.keys("images")
    for key in keys:
        # Same batch composition: bitwise identical. Other batch sizes: CPU kernels pick other
        # code paths, so pixels may differ by one level of 255 (measured; see README).
        assert four.get_raw("images", key) == again.get_raw("images", key)
        assert np.abs(_pixels(one, key) - _pixels(four, key)).max() <= 1


class PoisonedPipe:
    """Returns NaN images for prompts containing 'poison' (as an fp16 overflow would)."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.tokenizer = pipe.tokenizer

    def __call__(self, **kwargs):
        out = self.pipe(**kwargs)
        for i, prompt in enumerate(kwargs["prompt"]):
            if "poison" in prompt:
                out.images[i][...] = np.nan
        return out


def test_nan_images_are_recorded_and_retried(tmp_path, pipe):
    config, p = pipe
    store = Store(tmp_path / "s", create=True)
    samples = _samples(["a cat", "poison apple", "a dog"])
    first = generate_dataset(store, samples, config, lambda: PoisonedPipe(p), batch_size=2)
    assert (first.generated, first.failed, first.retried) == (2, 1, 0)
    assert first.failures == [{"prompt": "poison apple", "reason": "non-finite pixels (NaN/inf) in the decoded image"}]
    recorded = recorded_failures(store, config.fingerprint())
    assert [r["prompt"] for r in recorded] == ["poison apple"]
    assert maintenance.info(store)["failed_prompts"] == 1
    second = generate_dataset(store, samples, config, lambda: p, batch_size=2)
    assert (second.generated, second.reused, second.failed, second.retried) == (1, 2, 0, 1)
    assert recorded_failures(store) == [] and store.count("images") == 3
    assert maintenance.info(store)["failed_prompts"] == 0


def test_shards_partition_the_work(tmp_path, pipe):
    config, p = pipe
    store = Store(tmp_path / "s", create=True)
    a = generate_dataset(store, _samples(), config, lambda: p, shard=(0, 2))
    b = generate_dataset(store, _samples(), config, lambda: p, shard=(1, 2))
    assert a.generated + b.generated == 6 and a.other_shards == b.generated and b.other_shards == a.generated
    assert store.count("images") == 6


def test_truncated_prompts_are_counted(pipe):
    _, p = pipe
    long = " ".join(["word"] * 80)  # 80 tokens + start/end > 77
    exact = " ".join(["word"] * 75)  # 75 + 2 = 77: fits
    assert count_truncated(p.tokenizer, ["a cat", long, exact, long + " more"]) == 2
    assert count_truncated(None, ["x"]) is None


def test_reuse_similar_copies_near_duplicate_prompts(tmp_path, pipe):
    from lugpi_cli.generation.similar import REUSED_PREFIX

    import dataclasses

    base, p = pipe
    config = dataclasses.replace(base, reuse_similar=0.9999)
    assert config.fingerprint() != base.fingerprint()  # it changes which image a prompt gets
    store = Store(tmp_path / "s", create=True)
    samples = _samples(["a cat", "a dog", "A Cat", "a  cat", "red house"])  # CLIP lower-cases and splits words
    out = generate_dataset(store, samples, config, lambda: p, batch_size=2)
    assert (out.generated, out.reused_similar) == (3, 2)
    plan = plan_images(samples, config.fingerprint(), config.seed)
    keys = dict(zip(plan.prompts, plan.keys))
    cats = sorted(["a cat", "A Cat", "a  cat"], key=keys.get)  # the first in key order is drawn
    for dup in cats[1:]:
        assert store.get_raw("images", keys[dup]) == store.get_raw("images", keys[cats[0]])
        note = store.get("meta", REUSED_PREFIX + keys[dup].decode())
        assert note["source_prompt"] == cats[0] and note["similarity"] >= 0.9999
    again = generate_dataset(store, samples, config, lambda: p)
    assert (again.generated, again.reused_similar, again.reused) == (0, 0, 5)
    without = generate_dataset(Store(tmp_path / "t", create=True), samples, base, lambda: p)
    assert (without.generated, without.reused_similar) == (5, 0)  # off by default


def test_reuse_similar_does_not_depend_on_batch_size_shards_or_resume(tmp_path, pipe):
    """The same groups however the work was cut, the same bytes for the same batch size, so stores merge.
    (Pixels across batch sizes differ by CPU kernels, within one level; see the batch-size test.)"""
    import dataclasses

    base, p = pipe
    config = dataclasses.replace(base, reuse_similar=0.9999)
    samples = _samples(["A Cat", "a dog", "a cat", "red house", "a  cat", "A DOG", "blue sea"])

    def contents(store):
        return {k: store.get_raw("images", k) for k in store.keys("images")}

    def groups(store):  # which keys hold the same image
        by_bytes = {}
        for k, v in contents(store).items():
            by_bytes.setdefault(v, set()).add(k)
        return sorted(map(sorted, by_bytes.values()))

    one = Store(tmp_path / "one", create=True)
    out = generate_dataset(one, samples, config, lambda: p, batch_size=1)
    assert (out.generated, out.reused_similar) == (4, 3)
    sharded = Store(tmp_path / "sharded", create=True)
    parts = [generate_dataset(sharded, samples, config, lambda: p, batch_size=1, shard=(i, 3)) for i in range(3)]
    assert sum(s.generated for s in parts) == 4 and sum(s.reused_similar for s in parts) == 3
    resumed = Store(tmp_path / "resumed", create=True)
    generate_dataset(resumed, samples[:3], config, lambda: p, batch_size=1)  # an earlier, smaller run ...
    generate_dataset(resumed, samples, config, lambda: p, batch_size=1)  # ... then the whole set
    assert contents(sharded) == contents(one)
    assert set(contents(resumed)) == set(contents(one))
    merged = maintenance.merge(Store(tmp_path / "merged", create=True), [tmp_path / "one", tmp_path / "sharded"])
    assert merged["added"]["images"] == 7
    wide = Store(tmp_path / "wide", create=True)
    generate_dataset(wide, samples, config, lambda: p, batch_size=8)
    assert groups(wide) == groups(one) and len(groups(one)) == 4
    for key in one.keys("images"):
        assert np.abs(_pixels(wide, key) - _pixels(one, key)).max() <= 1


def test_identical_embeddings_reach_a_threshold_of_one():
    """float32 inner products of equal unit vectors may come out a few ulps below 1.0."""
    from lugpi_cli.generation.similar import assign_representatives

    rng = np.random.default_rng(0)
    v = rng.standard_normal((500, 64)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    rep, sim = assign_representatives(np.concatenate([v, v]), range(1000), 1.0, chunk=128)
    assert (rep[:500] == np.arange(500)).all() and (rep[500:] == np.arange(500)).all()
    # one row at a time gives the same grouping as chunks
    w = rng.standard_normal((300, 8)).astype(np.float32)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    order = rng.permutation(300)
    assert (assign_representatives(w, order, 0.8, chunk=1)[0] == assign_representatives(w, order, 0.8, chunk=64)[0]).all()


def test_reuse_similar_threshold_is_checked(tmp_path, pipe):
    from lugpi_cli.errors import UserError

    import dataclasses

    config, p = pipe
    with pytest.raises(UserError, match="--reuse-similar"):
        generate_dataset(Store(tmp_path / "s", create=True), _samples(), dataclasses.replace(config, reuse_similar=1.5),
                         lambda: p)
