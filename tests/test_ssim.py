import numpy as np
from skimage.metrics import structural_similarity

from brain.ssim import max_ssim, pairwise_ssim


def test_pairwise_ssim_matches_scikit_image():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (1, 20, 24, 3), dtype=np.uint8)
    noisy = np.clip(base + rng.normal(0, 25, (4, 20, 24, 3)), 0, 255).astype(np.uint8)
    others = rng.integers(0, 255, (3, 20, 24, 3), dtype=np.uint8)
    refs = np.concatenate([noisy, others])
    ours = pairwise_ssim(np.concatenate([base, others[:1]]), refs)
    for i, cand in enumerate([base[0], others[0]]):
        for j, ref in enumerate(refs):
            expected = structural_similarity(cand, ref, channel_axis=-1, data_range=255)
            assert abs(ours[i, j] - expected) < 1e-5


def test_max_ssim_finds_the_copy_across_chunks():
    rng = np.random.default_rng(1)
    refs = rng.integers(0, 255, (50, 16, 16, 1), dtype=np.uint8)
    candidates = refs[[7, 42]].copy()
    best, where = max_ssim(candidates, refs, chunk=8)
    assert np.allclose(best, 1.0) and where.tolist() == [7, 42]
