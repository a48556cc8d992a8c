from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo_ensemble.data import slices as sl
from zoo_ensemble.data.augment import AugmentConfig, Augmenter, sample_seed

ORGANS = ["heart", "trachea", "aorta"]


def test_cases_are_cropped_and_flag_partial_labels(cohort_a, cohort_b, tmp_path):
    a = sl.load_cases(cohort_a, cohort_a.cases[:1], ORGANS, 64)
    b = sl.load_cases(cohort_b, cohort_b.cases[:1], ORGANS, 64)
    assert a[0].image.shape[1:] == (64, 64) and a[0].image.dtype == np.int16
    assert a[0].masks.shape[1:] == (3, 64, 64)
    assert a[0].annotated.tolist() == [True, True, False]  # source A has no aorta labels
    assert b[0].annotated.tolist() == [True, True, True]
    assert a[0].masks[:, 2].sum() == 0
    ds = sl.SliceDataset(a + b)
    item = ds[5]
    assert item["image"].shape == (1, 64, 64) and item["mask"].shape == (3, 64, 64)
    assert item["index"] == 5 and item["slice"] == 5
    assert len(ds) == a[0].image.shape[0] + b[0].image.shape[0]


def test_disk_cache_is_reused(cohort_a, tmp_path, monkeypatch):
    first = sl.load_cases(cohort_a, cohort_a.cases[:2], ORGANS, 48, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2

    def no_reads(*a, **k):
        raise AssertionError("volume re-read despite the cache")

    monkeypatch.setattr(sl, "prepare_case", no_reads)
    again = sl.load_cases(cohort_a, cohort_a.cases[:2], ORGANS, 48, cache_dir=tmp_path)
    assert all(np.array_equal(x.image, y.image) and np.array_equal(x.masks, y.masks) for x, y in zip(first, again))


def test_small_organs_are_oversampled_and_sampling_is_seeded(cohort_a):
    cases = sl.load_cases(cohort_a, cohort_a.cases[:2], ORGANS, 48)
    w = sl.slice_weights(cases, ORGANS, small_boost=3.0, empty_weight=0.25)
    masks = np.concatenate([c.masks for c in cases])
    has_trachea = masks[:, 1].reshape(len(masks), -1).any(1)
    has_any = masks.reshape(len(masks), -1).any(1)
    assert np.all(w[has_trachea] == 3.0)
    assert np.all(w[~has_any] == 0.25)
    s1, s2 = sl.EpochSampler(w, 50, seed=4), sl.EpochSampler(w, 50, seed=4)
    s1.set_epoch(2)
    s2.set_epoch(2)
    assert list(s1) == list(s2)
    s2.set_epoch(3)
    assert list(s1) != list(s2)
    shards = [list(sl.EpochSampler(w, 50, seed=4, rank=r, world_size=2)) for r in (0, 1)]
    whole = list(sl.EpochSampler(w, 50, seed=4))
    assert shards[0] == whole[0::2] and shards[1] == whole[1::2]  # data-parallel ranks split one draw
    drawn = np.array(list(sl.EpochSampler(w, 4000, seed=0)))
    assert has_trachea[drawn].mean() > has_trachea.mean()


def test_augmentation_moves_image_and_mask_together(cohort_a):
    cases = sl.load_cases(cohort_a, cohort_a.cases[:1], ["lung_left", "lung_right"], 64)
    z = int(np.argmax(cases[0].masks[:, 0].reshape(len(cases[0].masks), -1).sum(1)))
    image = torch.from_numpy(cases[0].image[z].astype(np.float32))[None, None].repeat(8, 1, 1, 1)
    mask = torch.from_numpy(cases[0].masks[z].astype(np.float32))[None].repeat(8, 1, 1, 1)
    seeds = [sample_seed(1, epoch, z) for epoch in range(8)]
    img, msk = Augmenter()(image, mask, seeds)
    assert img.shape == image.shape and msk.shape == mask.shape
    assert set(msk.unique().tolist()) <= {0.0, 1.0}
    for k in range(8):
        lung = msk[k, 0] > 0.5
        assert img[k, 0][lung].mean() < -500  # the deformed lung mask still sits on dark (air-filled) pixels
    changed = sum(not torch.allclose(img[k], image[k], atol=0.5) for k in range(8))
    assert changed >= 4
    again, _ = Augmenter()(image[3:4], mask[3:4], seeds[3:4])  # alone or in a batch: the same draw
    assert torch.allclose(again[0], img[3], atol=1e-3)


def test_augmentation_choices_follow_their_probabilities():
    aug = Augmenter(AugmentConfig(rotate_p=0.5, grid_p=0.25, elastic_p=0.75))
    draws = [aug.draw(seed, (64, 64)) for seed in range(1200)]
    assert abs(np.mean([d.angle != 0 for d in draws]) - 0.5) < 0.05
    assert abs(np.mean([not np.all(d.steps_y == 1) for d in draws]) - 0.25) < 0.05
    assert abs(np.mean([np.any(d.offsets != 0) for d in draws]) - 0.75) < 0.05
    assert max(abs(d.angle) for d in draws) <= np.radians(10)
    assert draws[7].offsets.shape == (2, 4, 4)  # control points 24 px apart over 64 px


def test_augmentation_that_chooses_nothing_is_the_identity():
    aug = Augmenter(AugmentConfig(rotate_p=0, grid_p=0, elastic_p=0))
    image = torch.randn(3, 1, 40, 52) * 300
    mask = (torch.rand(3, 2, 40, 52) > 0.5).float()
    img, msk = aug(image, mask, [0, 1, 2])
    assert torch.allclose(img, image, atol=0.05) and torch.equal(msk, mask)


def test_a_rotation_turns_a_point_about_the_centre_by_the_drawn_angle():
    aug = Augmenter(AugmentConfig(rotate_p=1, grid_p=0, elastic_p=0))
    image = torch.full((1, 1, 65, 65), -1000.0)
    mask = torch.zeros(1, 1, 65, 65)
    mask[0, 0, 32, 52] = 1  # 20 px right of the centre
    image[0, 0, 30:35, 50:55] = 1000
    seed = next(s for s in range(100) if abs(aug.draw(s, (65, 65)).angle) > np.radians(6))
    angle = aug.draw(seed, (65, 65)).angle
    img, _ = aug(image, mask, [seed])
    ys, xs = np.nonzero(img[0, 0].numpy() > 0)
    w = img[0, 0].numpy()[ys, xs] + 1000
    cy, cx = np.average(ys, weights=w) - 32, np.average(xs, weights=w) - 32
    assert np.hypot(cy, cx) == pytest.approx(20, abs=0.5)  # turned, not moved away
    assert abs(np.arctan2(cy, cx)) == pytest.approx(abs(angle), abs=0.03)


def test_grid_distortion_keeps_the_slice_edges_and_order():
    aug = Augmenter(AugmentConfig(rotate_p=0, grid_p=1, elastic_p=0, grid_limit=0.3))
    grid = aug.sampling_grid([4, 5], (50, 60), torch.device("cpu"))
    x, y = grid[..., 0], grid[..., 1]
    assert torch.allclose(x[:, :, 0], torch.tensor(-1.0)) and torch.allclose(x[:, :, -1], torch.tensor(1.0))
    assert torch.allclose(y[:, 0, :], torch.tensor(-1.0)) and torch.allclose(y[:, -1, :], torch.tensor(1.0))
    assert bool((x.diff(dim=2) > 0).all()) and bool((y.diff(dim=1) > 0).all())  # monotone: nothing folds
    assert not torch.allclose(grid[0], grid[1])
