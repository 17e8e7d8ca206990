"""Why this genre: the evidence maps of `core.serving.explain` and the Predict page's view of them.

Tiny models with fixed weights, composed by the real `make_genre_model`, know exactly where their evidence
is (a colour planted in one corner), so the map must light up there and nowhere else, with or without the
mirrored branch. The trained tiny run (the real backbone) shows the explainer explains the real model:
its own forward pass gives the model's scores. The AppTest drives the page as a user would.
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np
import pytest
import streamlit
import tensorflow as tf
from streamlit.testing.v1 import AppTest

from core.data.genres import GenreVocabulary
from core.model.features import make_genre_model
from core.model.pipeline import resize_poster
from core.serving.explain import Explainer, make_explainer, poster_box
from core.serving.grad_cam import ExplainError
from core.serving.heat_overlay import colormap, overlay
from core.serving.predict import LoadedModel, decode_image_file, load_run_model, predict_images, preprocess_images
from core.serving.uploads import validate_upload
from tests.apptest_helpers import shown_text, use_settings
from tests.model_fixture import TinyModel, as_on_a_warm_server, open_app
from ui.explain import DEFAULT_OPACITY

IMAGE_SIZE = (64, 48)  # the planted models' input, height × width
POSTER_SHAPE = (150, 100)  # the test posters' own size: not the model's, nor its aspect ratio
GREY, RED, BLUE = (128, 128, 128), (230, 20, 20), (20, 20, 230)
GENRES = ("Red", "Blue")
# The red patch, in the poster's top-left quadrant (rows, columns).
PATCH = (slice(10, 50), slice(8, 38))


# --- Tiny models that know where their evidence is -------------------------------------------------------


def colour_detector(name: str) -> keras.layers.Conv2D:
    """A fixed 1×1 convolution: channel 0 fires on pure red, channel 1 on pure blue, neither on grey or black."""
    layer = keras.layers.Conv2D(2, 1, activation="relu", name=name)
    layer.build((None, None, None, 3))
    kernel = np.array([[1.0, -0.5, -0.5], [-0.5, -0.5, 1.0]], dtype=np.float32).T.reshape(1, 1, 3, 2)
    layer.set_weights([kernel, np.full(2, -100.0, dtype=np.float32)])
    return layer


def planted_features() -> keras.Model:
    """The colour detector's maps at two strides, each averaged over the poster, as "poster_features"."""
    pixels = keras.Input((*IMAGE_SIZE, 3), name="pixels")
    fires = colour_detector("colour")(pixels)
    coarse = keras.layers.AveragePooling2D(4, name="stride4")(fires)
    coarser = keras.layers.AveragePooling2D(8, name="stride8")(fires)
    pooled = [keras.layers.GlobalAveragePooling2D(name=f"{m.name}_mean")(m) for m in (coarse, coarser)]
    return keras.Model(pixels, keras.layers.Concatenate(name="features")(pooled), name="poster_features")


def planted_head(mean: np.ndarray | None = None) -> keras.Model:
    """Genre 0 ("Red") is the red features, genre 1 ("Blue") the blue ones; features are [r4, b4, r8, b8].

    With `mean`, the features are first standardised around it (unit variance), as the real head does.
    """
    features = keras.Input((4,), name="features")
    x = features
    if mean is not None:
        x = keras.layers.Normalization(mean=mean, variance=np.ones(4), name="standardize")(x)
    dense = keras.layers.Dense(2, activation="sigmoid", name="genres")
    outputs = dense(x)
    kernel = np.array([[0.05, 0.0], [0.0, 0.05], [0.05, 0.0], [0.0, 0.05]], dtype=np.float32)
    dense.set_weights([kernel, np.full(2, -1.0, dtype=np.float32)])
    return keras.Model(features, outputs, name="genre_head")


def flat_cnn() -> keras.Model:
    """A scratch-style CNN without a features sub-model: colour maps → max pool → flatten → dense."""
    pixels = keras.Input((*IMAGE_SIZE, 3), name="pixels")
    fires = keras.layers.MaxPooling2D(4, name="pool")(colour_detector("conv1")(pixels))
    flat = keras.layers.Flatten(name="flatten")(fires)
    dense = keras.layers.Dense(2, activation="sigmoid", name="genres")
    outputs = dense(flat)
    kernel = np.zeros((flat.shape[-1], 2), dtype=np.float32)
    kernel[0::2, 0] = kernel[1::2, 1] = 0.01  # flattened (row, column, channel): channel c feeds genre c
    dense.set_weights([kernel, np.full(2, -1.0, dtype=np.float32)])
    return keras.Model(pixels, outputs, name="scratch_cnn")


def as_loaded(model: keras.Model, genres: tuple[str, ...] = GENRES) -> LoadedModel:
    """An in-memory model as `load_run_model` would hand it over."""
    serve = tf.function(
        lambda batch: model(batch, training=False),
        input_signature=[tf.TensorSpec((None, *IMAGE_SIZE, 3), tf.float32)],
    )
    vocabulary = GenreVocabulary.from_names(genres)
    return LoadedModel(None, model, vocabulary, np.full(len(genres), 0.5), IMAGE_SIZE, {}, serve)


def planted_poster() -> np.ndarray:
    poster = np.full((*POSTER_SHAPE, 3), GREY, dtype=np.uint8)
    poster[PATCH] = RED
    return poster


def quadrant_means(heat: np.ndarray) -> dict[str, float]:
    half_height, half_width = heat.shape[0] // 2, heat.shape[1] // 2
    return {
        "top left": float(heat[:half_height, :half_width].mean()),
        "top right": float(heat[:half_height, half_width:].mean()),
        "bottom left": float(heat[half_height:, :half_width].mean()),
        "bottom right": float(heat[half_height:, half_width:].mean()),
    }


def assert_peaks_in_the_top_left(heat: np.ndarray) -> None:
    assert heat.shape == POSTER_SHAPE and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    assert 0 < heat.sum() < heat.size / 2  # the evidence is a patch, not the whole poster
    row, column = np.unravel_index(np.argmax(heat), heat.shape)
    assert row < POSTER_SHAPE[0] // 2 and column < POSTER_SHAPE[1] // 2, (row, column)
    means = quadrant_means(heat)
    corner = means.pop("top left")
    assert corner > 0.1
    for quadrant, mean in means.items():
        assert mean < corner / 10, f"the {quadrant} quadrant is as hot as the planted corner: {means}, {corner}"
    assert heat[PATCH].mean() > 0.5  # the patch itself is hot, not only its neighbourhood


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "flip_tta"])
def planted(request: pytest.FixtureRequest) -> tuple[LoadedModel, Explainer]:
    loaded = as_loaded(make_genre_model(planted_features(), planted_head(), flip_tta=request.param))
    return loaded, make_explainer(loaded)


def test_the_map_of_a_planted_colour_peaks_where_it_was_planted(planted) -> None:
    loaded, explainer = planted
    explanation = explainer.explain(planted_poster(), ["Red", "Blue"])
    assert list(explanation.maps) == ["Red", "Blue"]
    assert_peaks_in_the_top_left(explanation.maps["Red"])
    # No blue anywhere: no positive evidence for "Blue", an all-zero map (and no NaN from scaling it).
    assert not explanation.maps["Blue"].any() and explanation.maps["Blue"].shape == POSTER_SHAPE
    np.testing.assert_allclose(explanation.scores, predict_images(loaded, [planted_poster()])[0], atol=1e-5)


def test_the_mirrored_branch_is_flipped_back_and_moving_the_patch_moves_the_map(planted) -> None:
    _, explainer = planted
    poster = planted_poster()[:, ::-1].copy()  # the patch now in the top-right corner
    heat = explainer.maps(poster, ["Red"])["Red"]
    means = quadrant_means(heat)
    assert means["top right"] > 10 * max(means["top left"], means["bottom left"], means["bottom right"]), means


def test_for_a_linear_head_the_map_adds_up_to_the_genres_logit(planted) -> None:
    """Each layer's map is weighted so that the unrectified map's mean is the logit minus the head's bias
    (the reference is 0 here): the two strides are added in the same units."""
    loaded, explainer = planted
    batch = preprocess_images([planted_poster()], IMAGE_SIZE)
    raw, _ = explainer._evidence(tf.constant(batch), tf.constant([0, 1], dtype=tf.int32))
    scores = predict_images(loaded, [planted_poster()])[0].astype(np.float64)
    logits = np.log(scores / (1 - scores))
    np.testing.assert_allclose(raw.numpy().mean(axis=(1, 2)), logits - (-1.0), rtol=1e-3, atol=1e-4)


def test_with_a_standardising_head_the_evidence_is_counted_from_the_training_mean() -> None:
    """The head compares features with the training mean; the map must too: its mean is then the logit
    minus the logit of a poster with the mean features (the bias), and the patch still stands out."""
    mean = np.array([20.0, 0.0, 20.0, 0.0], dtype=np.float32)  # red features of a typical training poster
    loaded = as_loaded(make_genre_model(planted_features(), planted_head(mean), flip_tta=True))
    explainer = make_explainer(loaded)
    batch = preprocess_images([planted_poster()], IMAGE_SIZE)
    raw, _ = explainer._evidence(tf.constant(batch), tf.constant([0], dtype=tf.int32))
    score = float(predict_images(loaded, [planted_poster()])[0][0])
    np.testing.assert_allclose(raw.numpy().mean(), np.log(score / (1 - score)) + 1.0, rtol=1e-3, atol=1e-4)
    assert_peaks_in_the_top_left(explainer.maps(planted_poster(), ["Red"])["Red"])


def test_maps_can_be_asked_at_the_size_the_poster_is_drawn() -> None:
    explainer = make_explainer(as_loaded(make_genre_model(planted_features(), planted_head())))
    heat = explainer.maps(planted_poster(), ["Red"], size=(75, 50))["Red"]
    assert heat.shape == (75, 50)
    row, column = np.unravel_index(np.argmax(heat), heat.shape)
    assert row < 37 and column < 25


def test_a_model_without_a_features_sub_model_gets_classic_grad_cam_on_its_last_map() -> None:
    loaded = as_loaded(flat_cnn())
    explainer = make_explainer(loaded)
    assert "last convolution map" in explainer.method
    explanation = explainer.explain(planted_poster(), ["Red", "Blue"])
    assert_peaks_in_the_top_left(explanation.maps["Red"])
    assert not explanation.maps["Blue"].any()
    np.testing.assert_allclose(explanation.scores, predict_images(loaded, [planted_poster()])[0], atol=1e-5)


def test_what_cannot_be_explained_says_why() -> None:
    pixels = keras.Input((*IMAGE_SIZE, 3), name="pixels")
    no_map = keras.Model(pixels, keras.layers.Dense(2, activation="sigmoid")(keras.layers.Flatten()(pixels)))
    with pytest.raises(ExplainError, match="no spatial feature map"):
        make_explainer(as_loaded(no_map))

    explainer = make_explainer(as_loaded(make_genre_model(planted_features(), planted_head())))
    with pytest.raises(ExplainError, match=r"'Comedy'.*it knows Red, Blue"):
        explainer.maps(planted_poster(), ["Red", "Comedy"])
    with pytest.raises(ExplainError, match="list of genre names"):
        explainer.maps(planted_poster(), "Red")
    with pytest.raises(ValueError, match="RGB uint8"):
        explainer.maps(planted_poster().astype(np.float32), ["Red"])
    assert explainer.maps(planted_poster(), []) == {}


@pytest.mark.parametrize("shape", [(90, 60), (150, 100), (33, 200), (200, 33), (64, 48), (7, 5)])
def test_the_poster_box_is_where_the_resize_puts_the_poster(shape: tuple[int, int]) -> None:
    resized = resize_poster(np.full((*shape, 3), 255, dtype=np.uint8), IMAGE_SIZE).numpy()
    rows, columns = np.nonzero(resized[..., 0])
    top, left, height, width = poster_box(shape, IMAGE_SIZE)
    assert (rows.min(), columns.min(), rows.max() + 1 - rows.min(), columns.max() + 1 - columns.min()) == (
        top,
        left,
        height,
        width,
    )


def test_the_overlay_blends_a_perceptual_colormap_over_the_poster() -> None:
    poster = planted_poster()
    heat = np.zeros(POSTER_SHAPE, dtype=np.float32)
    heat[PATCH] = 1.0
    np.testing.assert_array_equal(overlay(poster, heat, 0.0), poster)  # opacity 0: the plain poster
    full = overlay(poster, heat, 1.0)
    np.testing.assert_array_equal(full[PATCH], colormap(heat)[PATCH])  # the colour map alone at the peak
    outside = heat == 0
    np.testing.assert_array_equal(full[outside], poster[outside])  # the low end is transparent: no purple tint
    half = overlay(poster, heat, 0.5)
    assert half.dtype == np.uint8 and half.shape == poster.shape
    np.testing.assert_array_equal(half[outside], poster[outside])
    assert not np.array_equal(half[PATCH], poster[PATCH]) and not np.array_equal(half[PATCH], full[PATCH])
    weak = overlay(poster, heat * 0.3, 1.0)  # weaker evidence, fainter colour: closer to the poster
    assert (
        np.abs(weak[PATCH].astype(int) - poster[PATCH]).mean() < np.abs(full[PATCH].astype(int) - poster[PATCH]).mean()
    )
    # Inferno: from black to pale yellow, brighter all the way (readable in greyscale too).
    ramp = colormap(np.linspace(0, 1, 50)).astype(np.float64)
    luminance = ramp @ [0.2126, 0.7152, 0.0722]
    assert (np.diff(luminance) > 0).all() and luminance[0] < 5 and luminance[-1] > 240
    with pytest.raises(ValueError, match="shape"):
        overlay(poster, heat[:10], 0.5)
    with pytest.raises(ValueError, match="opacity"):
        overlay(poster, heat, 1.5)


# --- The trained tiny run: the real backbone, its stage maps and its head ---------------------------------


@pytest.fixture(scope="module")
def tiny_explainer(tiny_model: TinyModel) -> Explainer:
    return make_explainer(load_run_model(tiny_model.run_dir))


def fixture_posters(model: TinyModel, count: int = 4) -> list[tuple[str, np.ndarray]]:
    movies = [m for m in model.usable_movies() if m.poster == "jpeg"][:count]
    return [(m.imdb_id, decode_image_file(model.poster_path(m))) for m in movies]


def test_the_tiny_runs_top_3_maps_explain_its_own_scores(tiny_model: TinyModel, tiny_explainer: Explainer) -> None:
    loaded = tiny_explainer.loaded
    assert "7 pooled feature maps" in tiny_explainer.method  # every stage the head reads
    lit = 0
    for imdb_id, pixels in fixture_posters(tiny_model):
        assert pixels.shape[:2] != loaded.image_size
        scores = predict_images(loaded, [pixels])[0]
        top = [genre for genre, _ in loaded.vocabulary.top_k(scores, 3)]
        explanation = tiny_explainer.explain(pixels, top)
        np.testing.assert_allclose(explanation.scores, scores, atol=1e-4, err_msg=imdb_id)
        assert list(explanation.maps) == top
        for heat in explanation.maps.values():
            assert heat.shape == pixels.shape[:2] and heat.dtype == np.float32
            assert np.isfinite(heat).all() and heat.min() >= 0.0 and heat.max() <= 1.0
            assert heat.sum() < heat.size
            lit += bool(heat.any())
    assert lit >= 4, "almost every top genre of the fixture posters has no positive evidence at all"


# --- The Predict page -------------------------------------------------------------------------------------


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def shown_evidence(app: AppTest, calls: list[tuple[np.ndarray, str]]) -> tuple[str, str, np.ndarray]:
    """The evidence image the last run drew: its alternative text, its URL and its pixels."""
    drawn = [(alt, image) for image, alt in calls if alt.startswith(("Evidence map for", "The plain poster"))]
    calls.clear()
    assert len(drawn) == 1, [alt for alt, _ in drawn]
    alt, image = drawn[0]
    [url] = [img.url for element in app.image for img in element.proto.imgs if img.alt == alt]
    return alt, url, image


@pytest.fixture
def app_on_the_tiny_model(monkeypatch: pytest.MonkeyPatch, tiny_model: TinyModel) -> None:
    """The app's pages on the tiny model's data and runs, their buttons clickable."""
    as_on_a_warm_server(monkeypatch)
    use_settings(monkeypatch, tiny_model.settings)


@pytest.fixture
def drawn_images(monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, str]]:
    """Every image the page draws, as (pixels, alternative text): what a person sees, not only its URL."""
    calls: list[tuple[np.ndarray, str]] = []
    real_image = streamlit.image

    def recording_image(image, *args, **kwargs):
        calls.append((np.asarray(image), kwargs.get("alt") or ""))
        return real_image(image, *args, **kwargs)

    monkeypatch.setattr(streamlit, "image", recording_image)
    return calls


@pytest.mark.usefixtures("app_on_the_tiny_model")
def test_the_evidence_follows_the_chosen_genre_the_plain_poster_and_the_opacity(
    tiny_model: TinyModel, tiny_explainer: Explainer, drawn_images: list[tuple[np.ndarray, str]]
) -> None:
    # A fixture poster whose first two genres have different maps, so that switching must change the image.
    loaded = tiny_explainer.loaded
    for movie in [m for m in tiny_model.usable_movies() if m.poster == "jpeg"]:
        data = tiny_model.poster_path(movie).read_bytes()
        pixels = validate_upload(data, "poster.jpg").pixels
        top = loaded.vocabulary.top_k(predict_images(loaded, [pixels])[0], 3)
        maps = tiny_explainer.maps(pixels, [genre for genre, _ in top])
        if np.abs(maps[top[0][0]] - maps[top[1][0]]).max() > 0.2:
            break
    else:
        pytest.fail("no fixture poster has two top genres with different evidence")
    (first, first_score), (second, _), _ = top

    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value(("my poster.jpg", data, "image/jpeg")).run()
    assert not app.exception and not app.error
    selector = app.segmented_control(key=f"evidence-genre-{content_hash(data)}")
    assert selector.options == [genre for genre, _ in top] + ["Plain poster"]
    assert selector.value == first
    alt, first_url, first_image = shown_evidence(app, drawn_images)
    assert alt == f"Evidence map for {first} over the poster"
    assert first_image.shape == pixels.shape and not np.array_equal(first_image, pixels)
    captions = [shown_text(caption.value) for caption in app.caption]
    assert any(first in caption and f"({first_score:.0%})".replace("%", " %") in caption for caption in captions)

    selector.set_value(second).run()
    alt, second_url, second_image = shown_evidence(app, drawn_images)
    assert alt == f"Evidence map for {second} over the poster"
    assert second_url != first_url and not np.array_equal(second_image, first_image)

    app.segmented_control(key=f"evidence-genre-{content_hash(data)}").set_value("Plain poster").run()
    alt, _, plain = shown_evidence(app, drawn_images)
    assert alt == "The plain poster"
    np.testing.assert_array_equal(plain, pixels)
    assert app.slider(key=f"evidence-opacity-{content_hash(data)}").disabled

    app.segmented_control(key=f"evidence-genre-{content_hash(data)}").set_value(first).run()
    _, again_url, _ = shown_evidence(app, drawn_images)
    assert again_url == first_url  # the same map, from the cache
    opacity = app.slider(key=f"evidence-opacity-{content_hash(data)}")
    assert opacity.value == DEFAULT_OPACITY and not opacity.disabled
    opacity.set_value(100).run()
    _, opaque_url, opaque = shown_evidence(app, drawn_images)
    assert opaque_url != first_url
    # At 100 %, each pixel blended by its own evidence (the page keeps maps as 256 levels: a step off at most).
    expected = overlay(pixels, np.rint(maps[first] * 255) / 255, 1.0)
    assert np.abs(opaque.astype(int) - expected.astype(int)).max() <= 2
    # The plain poster is beside the map, and the map has its colour scale.
    alts = [img.alt for element in app.image for img in element.proto.imgs]
    assert "The poster as it is, beside its evidence" in alts and "The evidence map's colour scale" in alts
    app.slider(key=f"evidence-opacity-{content_hash(data)}").set_value(0).run()
    _, _, invisible = shown_evidence(app, drawn_images)
    np.testing.assert_array_equal(invisible, pixels)
    assert not app.exception


@pytest.mark.usefixtures("app_on_the_tiny_model")
def test_a_movies_page_shows_the_evidence_of_each_of_its_predicted_genres(
    tiny_model: TinyModel, tiny_explainer: Explainer, drawn_images: list[tuple[np.ndarray, str]]
) -> None:
    movie = next(m for m in tiny_model.usable_movies() if m.poster == "jpeg")
    pixels = validate_upload(tiny_model.poster_path(movie).read_bytes(), "poster.jpg").pixels
    loaded = tiny_explainer.loaded
    top = [genre for genre, _ in loaded.vocabulary.top_k(predict_images(loaded, [pixels])[0], 3)]

    app = open_app("pages/movie.py", movie=movie.imdb_id)
    assert not app.exception, app.exception[0].value
    selector = app.segmented_control(key=f"evidence-genre-{movie.imdb_id}")
    assert selector.options == [*top, "Plain poster"] and selector.value == top[0]
    chips = [link.label.split(" · ")[0] for link in app.get("page_link") if "like=" in link.proto.query_string]
    assert [shown_text(chip) for chip in chips] == top  # the selector offers exactly the chips' genres
    drawn_images.clear()  # the page's first load ran its script twice (the entry point's rerun)
    seen = set()
    for genre in [*top[1:], top[0]]:  # each a change from the one shown
        app.segmented_control(key=f"evidence-genre-{movie.imdb_id}").set_value(genre).run()
        alt, url, image = shown_evidence(app, drawn_images)
        assert alt == f"Evidence map for {genre} over the poster" and image.shape == pixels.shape
        assert app.query_params["why"] in (genre, [genre])  # the URL says which map is shown
        seen.add(url)
    assert len(seen) >= 2  # the chips' genres have maps of their own (two may both be empty)
    app.segmented_control(key=f"evidence-genre-{movie.imdb_id}").set_value("Plain poster").run()
    alt, _, plain = shown_evidence(app, drawn_images)
    assert alt == "The plain poster"
    np.testing.assert_array_equal(plain, pixels)

    # A shared link opens the same map; a genre that is not among the top 3 gets a note and the first one.
    shared = open_app("pages/movie.py", movie=movie.imdb_id, why=top[2])
    assert shared.segmented_control(key=f"evidence-genre-{movie.imdb_id}").value == top[2]
    odd = open_app("pages/movie.py", movie=movie.imdb_id, why="<b>Space Opera</b>")
    assert not odd.exception and odd.segmented_control(key=f"evidence-genre-{movie.imdb_id}").value == top[0]
    notes = [caption.value for caption in odd.caption if "top genres" in caption.value]
    assert len(notes) == 1 and "not one of this poster" in notes[0] and "Space Opera" in shown_text(notes[0])
