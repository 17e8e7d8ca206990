"""One backbone pass for a dropped poster's genre scores and similarity embedding, when the model allows it:
the same numbers as the two passes (the model's, then the similarity embedder's), and two passes otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.model.features import FEATURE_DIM, make_feature_extractor, make_genre_model, make_head
from core.serving.poster_index import SIMILARITY_IMAGE_SIZE, PosterEmbedder, PosterReader, shares_backbone
from core.serving.predict import LoadedModel, load_run_model, predict_images
from tests.conftest import FixtureData

GENRES = ["Action", "Comedy", "Drama", "Horror"]


def save_run(
    folder: Path, weights_dir: Path, image_size: tuple[int, int], mode: str, flip_tta: bool, **settings: str
) -> LoadedModel:
    """A run folder as a finished run leaves it, with a random head over the pretrained features."""
    rng = np.random.default_rng(3)
    features = make_feature_extractor(image_size, weights_dir)
    head = make_head(len(GENRES), rng.normal(size=FEATURE_DIM), rng.uniform(0.5, 2.0, size=FEATURE_DIM))
    folder.mkdir(parents=True)
    make_genre_model(features, head, flip_tta=flip_tta).save(folder / "model.keras")
    height, width = image_size
    config = {"mode": mode, "image_size": f"{height}x{width}", "flip_tta": flip_tta, **settings}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "genres.json").write_text(json.dumps({"genres": GENRES}))
    (folder / "thresholds.json").write_text(json.dumps(dict.fromkeys(GENRES, 0.5)))
    return load_run_model(folder)


@pytest.fixture(scope="module")
def weights_dir(fixture_data: FixtureData) -> Path:
    return fixture_data.settings.weights_dir


@pytest.fixture(scope="module")
def embedder(weights_dir: Path) -> PosterEmbedder:
    return PosterEmbedder(weights_dir)


@pytest.fixture(scope="module")
def posters() -> list[np.ndarray]:
    """Poster-like images of different sizes (the reader resizes each, as the pipeline does)."""
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in ((440, 300), (268, 182), (500, 333))]


@pytest.mark.slow
@pytest.mark.parametrize("flip_tta", [False, True])
def test_a_fast_run_at_the_similarity_size_reads_a_poster_in_one_pass_with_the_two_passes_numbers(
    tmp_path: Path, weights_dir: Path, embedder: PosterEmbedder, posters: list[np.ndarray], flip_tta: bool
) -> None:
    loaded = save_run(tmp_path / "run", weights_dir, SIMILARITY_IMAGE_SIZE, "fast", flip_tta)
    assert shares_backbone(loaded)
    reader = PosterReader(loaded, lambda: pytest.fail("one pass must not build the separate embedder"))
    assert reader.one_pass
    scores, vectors = reader.read(posters)
    np.testing.assert_allclose(scores, predict_images(loaded, posters), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(vectors, embedder.embed(posters), rtol=1e-3, atol=1e-4)
    assert scores.shape == (3, len(GENRES)) and vectors.dtype == np.float32


@pytest.mark.slow
def test_another_image_size_or_a_fine_tuned_backbone_takes_two_passes(
    tmp_path: Path, weights_dir: Path, embedder: PosterEmbedder, posters: list[np.ndarray]
) -> None:
    small = save_run(tmp_path / "small", weights_dir, (64, 48), "fast", False)
    built = []
    reader = PosterReader(small, lambda: built.append(1) or embedder)
    assert not shares_backbone(small) and not reader.one_pass
    scores, vectors = reader.read(posters)
    assert built == [1]
    np.testing.assert_array_equal(scores, predict_images(small, posters))
    np.testing.assert_array_equal(vectors, embedder.embed(posters))
    # Same size, but the backbone's top blocks were trained: its features are not the index's any more.
    tuned = save_run(tmp_path / "tuned", weights_dir, SIMILARITY_IMAGE_SIZE, "fine-tune", False)
    assert not shares_backbone(tuned)


@pytest.mark.parametrize("settings", [{"backbone": "lite2"}, {"multi_scale": "224x160"}])
def test_a_lite2_or_multi_scale_run_at_the_similarity_size_still_takes_two_passes(
    tmp_path: Path, weights_dir: Path, settings: dict[str, str]
) -> None:
    """Their features columns have the index's width but are not its embedding: one pass would mix spaces."""
    loaded = save_run(tmp_path / "run", weights_dir, SIMILARITY_IMAGE_SIZE, "fast", False, **settings)
    assert not shares_backbone(loaded)
    assert not PosterReader(loaded, lambda: pytest.fail("built on first use only")).one_pass


@pytest.mark.slow
def test_a_run_that_tuned_its_top_blocks_reads_in_one_pass_and_keeps_the_pretrained_similarity_vector(
    tmp_path: Path, weights_dir: Path, embedder: PosterEmbedder, posters: list[np.ndarray]
) -> None:
    """Its scores are its own model's, while the similarity vector stays the one the catalog was indexed with."""
    rng = np.random.default_rng(5)
    features = make_feature_extractor(SIMILARITY_IMAGE_SIZE, weights_dir)
    for name in ("block14_project_conv", "block15_expand_conv", "head_conv"):  # what tuning two blocks changes
        layer = features.get_layer(name)
        layer.set_weights([w * rng.uniform(0.5, 1.5, size=w.shape).astype(np.float32) for w in layer.get_weights()])
    head = make_head(len(GENRES), rng.normal(size=FEATURE_DIM), rng.uniform(0.5, 2.0, size=FEATURE_DIM))
    folder = tmp_path / "tuned"
    folder.mkdir()
    make_genre_model(features, head).save(folder / "model.keras")
    config = {"mode": "fast", "image_size": "384x256", "flip_tta": False, "tune_top_blocks": 2}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "genres.json").write_text(json.dumps({"genres": GENRES}))
    (folder / "thresholds.json").write_text(json.dumps(dict.fromkeys(GENRES, 0.5)))
    loaded = load_run_model(folder)
    reader = PosterReader(loaded, lambda: embedder)
    assert shares_backbone(loaded) and reader.one_pass
    scores, vectors = reader.read(posters)
    np.testing.assert_allclose(scores, predict_images(loaded, posters), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(vectors, embedder.embed(posters), rtol=1e-3, atol=1e-4)
    # The tuned blocks do change the run's own features: a one-pass reader that took them would be wrong.
    pixels = rng.uniform(0, 255, size=(1, *SIMILARITY_IMAGE_SIZE, 3)).astype(np.float32)
    tuned_vectors = np.asarray(features(pixels, training=False))[:, -1280:]
    assert np.abs(tuned_vectors - np.asarray(embedder.features(pixels, training=False))[:, -1280:]).max() > 1e-2
