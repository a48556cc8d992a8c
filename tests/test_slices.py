from __future__ import annotations

import numpy as np
import torch

from zoo_ensemble.data import slices as sl
from zoo_ensemble.data.augment import Augmenter

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
    ds = sl.SliceDataset(cases, augment=Augmenter(), seed=1)
    z = int(np.argmax(cases[0].masks[:, 0].reshape(len(cases[0].masks), -1).sum(1)))
    changed = 0
    for epoch in range(4):
        ds.set_epoch(epoch)
        item = ds[z]
        img, mask = item["image"][0], item["mask"]
        lung = mask[0] > 0.5
        # the deformed lung mask still sits on dark (air-filled) pixels
        assert img[lung].mean() < -500
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        changed += not torch.equal(item["image"][0], torch.from_numpy(cases[0].image[z].astype(np.float32)))
    assert changed >= 2
    ds.set_epoch(1)
    a, b = ds[z], ds[z]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])


def test_augmentation_without_metadata_tracking_draws_the_same():
    import monai

    from zoo_ensemble.preprocess import AIR_HU

    aug = Augmenter()
    gen = torch.Generator().manual_seed(0)
    img = torch.randn(1, 48, 48, generator=gen) * 300
    mask = (torch.rand(2, 48, 48, generator=gen) > 0.5).float()
    fast = [aug(img, mask, seed) for seed in range(6)]
    assert monai.data.get_track_meta() is True  # the global switch is restored
    for seed, (f_img, f_mask) in enumerate(fast):
        aug.transform.set_random_state(seed=seed)
        ref = aug.transform({"image": img - AIR_HU, "mask": mask})  # tracking on: MONAI's default path
        assert torch.equal(torch.as_tensor(np.asarray(ref["image"]), dtype=torch.float32) + AIR_HU, f_img)
        assert torch.equal(torch.as_tensor(np.asarray(ref["mask"]), dtype=torch.float32).round_(), f_mask)
