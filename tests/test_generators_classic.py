"""Conditions and the classic generators (copies, erasing, interpolation, the SMOTE family)."""

from __future__ import annotations

import numpy as np
import pytest

from brain.errors import InputError
from generators import CONDITIONS, GENERATORS, Generator, make_condition
from generators.conditions import check_masks, random_boxes
from generators.plots import smooth, write_loss_curve

SIZE = 8


def images(n: int, seed: int, offset: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(100 + offset, 30, (n, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)


# -- conditions ---------------------------------------------------------------------------------
def test_conditions():
    assert CONDITIONS.names() == ["blur", "channel", "grayscale", "masked"]
    x = np.random.default_rng(0).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    rng = np.random.default_rng(1)
    y = make_condition("channel:2")(x, rng)
    assert np.array_equal(y, np.repeat(x[..., 2:3], 3, axis=-1))
    assert np.allclose(make_condition("grayscale")(x, rng), x.mean(-1, keepdims=True))
    blurred = make_condition("blur:1.5")(x, rng)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    masks = np.zeros((2, SIZE, SIZE), bool)
    masks[:, :4] = True
    masked = make_condition("masked")(x, rng, masks)
    assert np.array_equal(masked[~masks], x[~masks]) and not np.allclose(masked[masks], x[masks])
    assert make_condition("channel:0").spec() == "channel:0"
    with pytest.raises(InputError, match="out of range"):
        make_condition("channel:3").validate(3)
    with pytest.raises(InputError, match="integer"):
        make_condition("channel:1.5")
    with pytest.raises(InputError, match="unknown condition"):
        make_condition("sepia")
    with pytest.raises(InputError, match="takes no parameter"):
        make_condition("grayscale:2")


def test_masks():
    boxes = random_boxes(5, 32, np.random.default_rng(1))
    assert boxes.shape == (5, 32, 32) and all(8 * 8 <= b.sum() <= 16 * 16 for b in boxes)
    assert check_masks(np.ones((2, 4, 4, 1)), 2, 4).dtype == bool
    with pytest.raises(InputError, match="masks are 4x4 but images are 8x8"):
        check_masks(np.ones((2, 4, 4)), 2, 8)
    with pytest.raises(InputError, match="expected 3 masks"):
        check_masks(np.ones((2, 8, 8)), 3, 8)


# -- classic generators -------------------------------------------------------------------------
def make(name: str, **params) -> Generator:
    return GENERATORS.get(name)(SIZE, 3, **params)


def test_copies_and_erasing():
    rare = images(4, 0)
    copies = make("copies").fit(rare)
    np.testing.assert_array_equal(copies.generate(rare, [0, 1, 2, 3]), rare)
    erasing = make("erasing", patch_size=4, n_patches=1).fit(rare)
    out = erasing.generate(rare[:1].repeat(2, 0), [0, 1])
    assert ((out == 0).all(-1).sum(axis=(1, 2)) >= 16).all()  # one 4x4 black patch each
    assert not np.array_equal(out[0], out[1])  # positions from the seed
    np.testing.assert_array_equal(erasing.generate(rare[:1], [1])[0], out[1])
    with pytest.raises(InputError, match="patch size"):
        make("erasing", patch_size=16).fit(rare)


def test_interpolation():
    rare = images(3, 0)
    generator = make("interpolation").fit(rare)
    out = generator.generate(rare[:1], [5])[0].astype(float)
    partners = [0.9 * rare[0] + 0.1 * other for other in rare[1:]]
    assert min(np.abs(out - p).max() for p in partners) <= 0.5 + 1e-9
    with pytest.raises(InputError, match="at least 2"):
        make("interpolation").fit(rare[:1])


def on_a_smote_segment(sample, rare, k, tol, sources=None):
    """Whether ``sample`` lies on a segment from a rare image to one of its k nearest others."""
    flat = rare.reshape(len(rare), -1).astype(float)
    for i in range(len(flat)) if sources is None else sources:
        x = flat[i]
        distances = np.linalg.norm(flat - x, axis=1)
        for j in np.argsort(distances)[1 : k + 1]:
            direction = flat[j] - x
            gap = np.clip((sample - x) @ direction / (direction @ direction), 0, 1)
            if np.abs(x + gap * direction - sample).max() <= tol:
                return True
    return False


def test_smote_follows_imbalanced_learn_rule():
    from imblearn.over_sampling import SMOTE

    rare, other = images(8, 0), images(30, 1, offset=40)
    generator = make("smote", k_neighbors=3).fit(rare)
    out = generator.generate(rare, list(range(8)))
    flat_out = out.reshape(8, -1).astype(float)
    # outputs are rounded to uint8: within 1 of the segment from their own source
    assert all(on_a_smote_segment(s, rare, 3, 1.0, [i]) for i, s in enumerate(flat_out))
    # imbalanced-learn's own SMOTE samples obey the same rule
    X = np.concatenate([rare, other]).reshape(38, -1).astype(float)
    y = np.r_[np.ones(8), np.zeros(30)]
    X_res, _ = SMOTE(k_neighbors=3, random_state=0).fit_resample(X, y)
    assert all(on_a_smote_segment(s, rare, 3, 1e-6) for s in X_res[38:43])
    np.testing.assert_array_equal(generator.generate(rare[3:4], [3])[0], out[3])
    with pytest.raises(InputError, match="at least 4 rare-class images"):
        make("smote", k_neighbors=3).fit(rare[:3])


def test_adasyn_and_smote_tomek():
    rare, other = images(8, 0), images(20, 1, offset=20)
    with pytest.raises(InputError, match="other class"):
        make("adasyn", k_neighbors=3).fit(rare)
    adasyn = make("adasyn", k_neighbors=3).fit(rare, other)
    weights = adasyn.source_weights_
    assert weights.shape == (8,) and weights.sum() == pytest.approx(1.0) and (weights >= 0).all()
    assert adasyn.generate(rare[:2], [0, 1]).shape == (2, SIZE, SIZE, 3)


def test_smote_tomek_redraws_tomek_links():
    # rare images at 0 and 200, an other-class image at 100: SMOTE samples between 50 and 150
    # have it as nearest neighbour and are nearer to it than the rare images (a Tomek link)
    rare = np.stack([np.full((SIZE, SIZE, 3), v, np.uint8) for v in (0, 200)])
    other = np.full((1, SIZE, SIZE, 3), 100, np.uint8)
    seeds = list(range(20))
    links = {}
    for redraws in (0, 30):
        tomek = make("smote_tomek", k_neighbors=1, max_redraws=redraws).fit(rare, other)
        out = tomek.generate(rare[[0] * 20], seeds).reshape(20, -1).astype(float)
        links[redraws] = int(tomek.tomek_links(out).sum())
    assert links[0] > 0 and links[30] == 0


def test_classic_save_load(tmp_path):
    rare, other = images(8, 0), images(10, 1)
    for name in ("copies", "erasing", "interpolation", "smote", "adasyn", "smote_tomek"):
        params = {"patch_size": 4} if name == "erasing" else {}
        generator = make(name, **params).fit(rare, other if generator_needs_other(name) else None)
        generator.save(tmp_path / name)
        loaded = Generator.load(tmp_path / name, image_size=SIZE, channels=3)
        assert loaded.checkpoint_digest == generator.checkpoint_digest
        np.testing.assert_array_equal(
            loaded.generate(rare[:2], [4, 5]), generator.generate(rare[:2], [4, 5])
        )
    with pytest.raises(InputError, match="from method 'smote'"):
        GENERATORS.get("adasyn").load(tmp_path / "smote")
    (tmp_path / "smote" / "weights.safetensors").write_bytes(b"junk")
    with pytest.raises(InputError, match="weights"):
        Generator.load(tmp_path / "smote")


def generator_needs_other(name: str) -> bool:
    return GENERATORS.get(name).requires_fit_sources


def test_loss_curve_png(tmp_path):
    assert np.allclose(smooth([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    path = write_loss_curve(np.linspace(1, 0.1, 200), tmp_path / "loss.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
