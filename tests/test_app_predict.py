"""The Predict page as AppTest runs it, with the tiny active model on the generated dataset: uploads, the
top-3 chips and the similarity-sorted gallery they open, bad files, the batch table, a dataset movie; and
the top-k and similarity rules underneath, with the real backbone."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import time
from urllib.parse import parse_qsl

import numpy as np
import pytest
import streamlit
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import background
from core.app import jobs, runs
from core.config import KEEP_DROPPED_ENV, MAX_IMPORT_BYTES, MAX_UPLOAD_BYTES, STATE_DIR_ENV, get_settings
from core.data.catalog_build import open_catalog
from core.data.genres import GenreVocabulary
from core.serving.dropped_posters import keep_dropped
from core.serving.poster_index import PosterEmbedder, build_index, index_job_key
from core.serving.similar import SimilarityIndex
from core.serving.uploads import validate_upload
from core.training import run_folder as rf
from tests.apptest_helpers import shown_text, texts, use_settings
from tests.model_fixture import TinyModel, as_on_a_warm_server, open_app

GALLERY_PAGE_SIZE = 24  # pages/genre.py; its cards flow in one wrapping row, so listing order is reading order


def chips(app: AppTest) -> list[tuple[str, dict[str, str]]]:
    """The genre chips that open a gallery sorted by similarity: (genre as shown, the link's parameters)."""
    found = []
    for link in app.get("page_link"):
        params = dict(parse_qsl(link.proto.query_string))
        if params.get("sort") == "similar":
            found.append((shown_text(link.label).split(" · ")[0], params))
    return found


def gallery_ids(app: AppTest) -> list[str]:
    """The gallery's movie ids in reading order."""
    links = [link.proto.query_string for link in app.get("page_link")]
    return [dict(parse_qsl(query))["movie"] for query in links if query.startswith("movie=")]


def card_similarities(app: AppTest) -> list[str]:
    """The similarity each gallery card's caption shows ("0.97"), in reading order."""
    captions = [shown_text(caption.value) for caption in app.caption]
    return [caption.rsplit("similarity ", 1)[1] for caption in captions if " · similarity " in caption]


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


@pytest.fixture(autouse=True)
def warm_server(monkeypatch: pytest.MonkeyPatch) -> None:
    as_on_a_warm_server(monkeypatch)


@pytest.fixture
def with_model(monkeypatch: pytest.MonkeyPatch, tiny_model: TinyModel) -> TinyModel:
    use_settings(monkeypatch, tiny_model.settings)
    return tiny_model


@pytest.fixture(scope="module")
def index(tiny_model: TinyModel) -> SimilarityIndex:
    return build_index(open_catalog(tiny_model.settings), tiny_model.settings)  # from the embeddings cache


def poster_of(model: TinyModel, number: int = 5):
    """A usable movie of the fixture with two genres, and its poster file's bytes."""
    movie = [m for m in model.usable_movies() if m.poster == "jpeg" and len(m.genres) == 2][number]
    return movie, model.poster_path(movie).read_bytes()


# --- Without a model ------------------------------------------------------------------------------------


def test_without_a_model_the_page_offers_the_fast_default_run(
    monkeypatch: pytest.MonkeyPatch, tiny_model: TinyModel, tmp_path
) -> None:
    settings = dataclasses.replace(tiny_model.settings, runs_dir=tmp_path / "runs")
    use_settings(monkeypatch, settings)
    commands, processes = [], []
    real_popen = background.subprocess.Popen

    def harmless_popen(command, **kwargs):
        """The real launcher, but the process it starts only sleeps: nothing heavy is trained here."""
        commands.append(command)
        processes.append(real_popen(["sleep", "60"], **kwargs))
        return processes[-1]

    monkeypatch.setattr(background.subprocess, "Popen", harmless_popen)
    app = open_app("pages/predict.py")
    assert not app.exception
    assert "no active model yet" in texts(app)
    assert not app.get("file_uploader")
    try:
        next(button for button in app.button if button.label == "Start the fast default run").click().run()
        assert not app.exception
        [command] = commands
        assert command[1:5] == ["-m", "core.train", "--mode", "fast"]
        [run] = runs.list_runs(settings)
        assert run.state == "queued" and command[command.index("--run-dir") + 1] == str(run.path)
        # The app moves to the Training page, where the new run's progress shows.
        assert app.query_params["run"] in (run.run_id, [run.run_id])
        assert f"Running: {run.run_id}" in [header.value for header in app.subheader]
        # Back on Predict, the page says a model is on its way, links to it, and offers no second start.
        app.switch_page("pages/predict.py")
        app.query_params.clear()
        app.run()
        assert f"A model is being trained (run {run.run_id})" in texts(app)
        assert any(link.proto.query_string == f"run={run.run_id}" for link in app.get("page_link"))
        assert not [button for button in app.button if button.label == "Start the fast default run"]
    finally:
        for process in processes:
            process.kill()
            process.wait()


# --- Uploads, chips and the gallery they open -----------------------------------------------------------


def test_an_uploaded_poster_gets_three_chips_that_open_its_genres_sorted_by_similarity_even_after_a_reload(
    monkeypatch: pytest.MonkeyPatch, with_model: TinyModel, index: SimilarityIndex, tmp_path
) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    movie, data = poster_of(with_model)
    poster_hash = content_hash(data)
    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value(("my poster.jpg", data, "image/jpeg")).run()
    assert not app.exception and not app.error
    shown = chips(app)
    assert len(shown) == 3
    stored = app.session_state["dropped_posters"][poster_hash]
    vocabulary = GenreVocabulary.from_names(rf.read_genres(with_model.run_dir)["genres"])
    assert [genre for genre, _ in shown] == [genre for genre, _ in vocabulary.top_k(stored.scores, 3)]
    for genre, params in shown:
        assert params == {"genre": genre, "sort": "similar", "poster": poster_hash}

    # The chip's view, in the same session (which keeps the poster): the genre sorted by similarity.
    genre, params = shown[0]
    app.switch_page("pages/genre.py")
    app.query_params.clear()
    for key, value in params.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception and not app.warning
    assert app.selectbox(key="gallery_sort").value == "similar"
    catalog = open_catalog(with_model.settings)
    members = catalog.genre_gallery(genre, "title")["imdb_id"].tolist()
    ranked = index.rank(stored.embedding, members)
    assert gallery_ids(app) == [n.imdb_id for n in ranked][:GALLERY_PAGE_SIZE]
    assert "Similarity is to your poster my poster.jpg" in [shown_text(c.value) for c in app.caption]
    assert card_similarities(app) == [f"{n.similarity:.2f}" for n in ranked][:GALLERY_PAGE_SIZE]
    chip_view, chip_similarities = gallery_ids(app), card_similarities(app)

    # A genre of the poster's own movie: the upload is that catalog poster, so it comes first, at 1.00.
    app.query_params.clear()
    for key, value in {**params, "genre": movie.genres[1]}.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception
    assert gallery_ids(app)[0] == movie.imdb_id and card_similarities(app)[0] == "1.00"

    # The same URL in a new session (a reload, another browser, the app restarted): the poster was kept on the
    # server, so the gallery is the same, in the same order, against the same poster.
    fresh = open_app("pages/genre.py", **params)
    assert not fresh.exception and not fresh.warning
    assert fresh.selectbox(key="gallery_sort").value == "similar"
    assert gallery_ids(fresh) == chip_view
    assert card_similarities(fresh) == chip_similarities
    assert "Similarity is to your poster my poster.jpg" in [shown_text(c.value) for c in fresh.caption]


def test_with_poster_keep_dropped_0_nothing_is_kept_and_a_chip_link_works_in_its_tab_only(
    monkeypatch: pytest.MonkeyPatch, with_model: TinyModel, tmp_path
) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    monkeypatch.setenv(KEEP_DROPPED_ENV, "0")
    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value(("my poster.jpg", poster_of(with_model)[1], "image/jpeg")).run()
    assert not app.exception and not app.warning
    genre, params = chips(app)[0]
    assert not (tmp_path / "state" / "dropped-posters").exists()

    fresh = open_app("pages/genre.py", **params)
    assert not fresh.exception
    assert "not in this browser session any more" in " ".join(w.body for w in fresh.warning)
    assert fresh.selectbox(key="gallery_sort").value == "title"
    members = open_catalog(with_model.settings).genre_gallery(genre, "title")["imdb_id"].tolist()
    assert gallery_ids(fresh) == members[:GALLERY_PAGE_SIZE]
    assert not any("similarity" in shown_text(caption.value) for caption in fresh.caption)


def test_a_link_to_a_poster_dropped_8_days_ago_says_it_has_expired_and_sorts_by_title(
    monkeypatch: pytest.MonkeyPatch, with_model: TinyModel, tmp_path
) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    movie, data = poster_of(with_model)
    poster = validate_upload(data, "my poster.jpg")
    keep_dropped(get_settings(), [poster])
    eight_days_ago = time.time() - 8 * 24 * 60 * 60
    for path in get_settings().dropped_posters_dir.iterdir():
        os.utime(path, (eight_days_ago, eight_days_ago))

    gallery = open_app("pages/genre.py", genre=movie.genres[0], sort="similar", poster=poster.content_hash)

    assert not gallery.exception
    warned = shown_text(" ".join(w.body for w in gallery.warning))
    assert "This poster link has expired or is unknown on this server: dropped posters are kept 7 days" in warned
    assert gallery.selectbox(key="gallery_sort").value == "title"


def test_the_poster_uploader_keeps_the_poster_limit_though_the_server_takes_run_zips(with_model: TinyModel) -> None:
    uploader = open_app("pages/predict.py").file_uploader(key="poster_upload")
    # What the browser refuses before sending; the server takes up to a run zip's limit from any uploader.
    assert uploader.proto.max_upload_size_mb * 2**20 == MAX_UPLOAD_BYTES < MAX_IMPORT_BYTES


def test_back_on_the_predict_page_the_dropped_poster_is_shown_again(with_model: TinyModel) -> None:
    _, data = poster_of(with_model, 3)
    app = open_app("pages/predict.py")
    uploader = app.file_uploader(key="poster_upload")
    uploader.set_value(("again.jpg", data, "image/jpeg")).run()
    assert len(chips(app)) == 3
    app.file_uploader(key="poster_upload").set_value(None).run()  # the user removes the file: no result
    assert not chips(app)
    assert "Drop a poster above, or pick a movie" in " ".join(caption.value for caption in app.caption)

    app.file_uploader(key="poster_upload").set_value(("again.jpg", data, "image/jpeg")).run()
    before = chips(app)
    genre, params = before[0]
    app.switch_page("pages/genre.py")
    for key, value in params.items():
        app.query_params[key] = value
    app.run()
    assert f"Genre gallery: {genre}" in [title.value for title in app.title]
    app.switch_page("pages/predict.py")  # what Back does: the page again, its uploader drawn anew and empty
    app.query_params.clear()
    app.run()
    assert not app.exception
    assert chips(app) == before


def test_a_bad_file_gets_its_error_and_the_good_one_beside_it_is_still_predicted(with_model: TinyModel) -> None:
    _, data = poster_of(with_model)
    truncated = (with_model.settings.data_dir / "Movie_Poster_Dataset" / "2001" / "tt0200006.jpg").read_bytes()
    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value(
        [
            ("half a poster.jpg", truncated, "image/jpeg"),
            ("good.jpg", data, "image/jpeg"),
            ("notes.jpg", b"These are my notes, not a poster.\n", "image/jpeg"),
        ]
    ).run()
    assert not app.exception
    errors = [re.sub(r"\\(.)", r"\1", error.body) for error in app.error]  # as shown: Markdown escapes undone
    assert len(errors) == 2
    assert errors[0].startswith("half a poster.jpg: ") and "truncated" in errors[0].lower()
    assert errors[1].startswith("notes.jpg: ") and "text" in errors[1]
    shown = chips(app)
    assert len(shown) == 3 and {params["poster"] for _, params in shown} == {content_hash(data)}
    assert not app.get("download_button")  # one good poster: no batch table


def test_several_posters_give_the_batch_table_and_its_csv(
    with_model: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    downloads = []
    real_download_button = streamlit.download_button

    def recording_download_button(label, data, *args, **kwargs):
        downloads.append((label, data, args, kwargs))
        return real_download_button(label, data, *args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", recording_download_button)
    files = [(f"poster {n}.jpg", poster_of(with_model, n)[1]) for n in range(3)]
    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value([(name, data, "image/jpeg") for name, data in files]).run()
    assert not app.exception and not app.error
    table = app.dataframe[0].value
    assert table["file"].tolist() == [name for name, _ in files]
    assert list(table.columns) == [
        "file",
        "looks like a poster",
        "genre 1",
        "genre 2",
        "genre 3",
        "score 1",
        "score 2",
        "score 3",
    ]
    # Each row's genres are the chips shown for that poster, in the same order.
    shown = chips(app)
    assert len(shown) == 9
    for row, (_, data) in zip(table.itertuples(index=False), files, strict=True):
        own = [genre for genre, params in shown if params["poster"] == content_hash(data)]
        assert own == [row[2], row[3], row[4]]
        assert row[5] >= row[6] >= row[7]
    [(label, data, args, kwargs)] = downloads
    assert label == "Download as CSV" and "predictions.csv" in (*args, kwargs.get("file_name"))
    assert list(csv.DictReader(io.StringIO(data.decode()))) == [
        {key: str(value) for key, value in row.items()} for row in table.to_dict("records")
    ]


UNLIKE_POSTERS = "This image looks unlike the movie posters the model learned from ("


def noise_png(side: int = 300) -> bytes:
    """A square of coloured noise, as a user might drop by mistake: no poster at all."""
    pixels = np.random.default_rng(3).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def warnings(app: AppTest) -> str:
    return " ".join(warning.body for warning in app.warning)


def test_a_noise_image_is_said_to_look_unlike_the_posters_and_a_poster_is_not(
    with_model: TinyModel, index: SimilarityIndex
) -> None:
    """The noise still gets its chips (the model scores anything), but with the warning beside them; a poster
    of the catalog's kind (here one of its own, whose nearest poster is itself) gets no warning."""
    noise = noise_png()
    _, poster = poster_of(with_model)
    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value(("noise.png", noise, "image/png")).run()
    assert not app.exception and not app.error
    assert UNLIKE_POSTERS in warnings(app)
    assert "its colours, contrast and fine detail are unlike any poster's" in warnings(app)  # why, in words
    assert warnings(app).endswith("): its scores mean little.")
    assert len(chips(app)) == 3

    app.file_uploader(key="poster_upload").set_value(("my poster.jpg", poster, "image/jpeg")).run()
    assert not app.exception and not app.error
    assert UNLIKE_POSTERS not in warnings(app)
    assert len(chips(app)) == 3

    # Both at once: the batch table says which one looks like a poster, and only the noise has the warning.
    both = [("noise.png", noise, "image/png"), ("my poster.jpg", poster, "image/jpeg")]
    app.file_uploader(key="poster_upload").set_value(both).run()
    assert not app.exception and not app.error
    table = app.dataframe[0].value
    assert dict(zip(table["file"], table["looks like a poster"], strict=True)) == {
        "noise.png": "no",
        "my poster.jpg": "yes",
    }
    assert warnings(app).count(UNLIKE_POSTERS) == 1


def test_a_dataset_movie_shows_its_true_genres_beside_the_prediction(with_model: TinyModel) -> None:
    movie, _ = poster_of(with_model, 4)
    app = open_app("pages/predict.py", movie=movie.imdb_id)
    assert not app.exception and not app.warning
    assert app.selectbox(key="predict_movie").value == movie.imdb_id
    assert "**True genres** (IMDb): " + ", ".join(movie.genres) in texts(app)
    shown = chips(app)
    assert len(shown) == 3
    assert all(params == {"genre": genre, "sort": "similar", "like": movie.imdb_id} for genre, params in shown)
    assert "More like this" in [header.value for header in app.subheader]

    # Another movie picked in the box becomes the URL's.
    other, _ = poster_of(with_model, 7)
    app.selectbox(key="predict_movie").set_value(other.imdb_id).run()
    assert app.query_params["movie"] in (other.imdb_id, [other.imdb_id])
    assert all(params["like"] == other.imdb_id for _, params in chips(app))

    # A `like=` chip opens the genre sorted by similarity to that movie's poster, the movie first.
    genre = next(genre for genre in other.genres)
    gallery = open_app("pages/genre.py", genre=genre, sort="similar", like=other.imdb_id)
    assert not gallery.exception and not gallery.warning
    assert gallery_ids(gallery)[0] == other.imdb_id
    assert f"Similarity is to the poster of {other.title}" in [shown_text(c.value) for c in gallery.caption]


@pytest.mark.parametrize(
    ("value", "message"),
    [("tt9999999", "not a usable movie"), ("<script>", "not a usable movie"), ("tt0200004", "not a usable movie")],
)
def test_a_movie_in_the_url_that_cannot_be_predicted_gets_a_message(
    with_model: TinyModel, value: str, message: str
) -> None:
    app = open_app("pages/predict.py", movie=value)
    assert not app.exception
    assert message in " ".join(w.body for w in app.warning)
    assert not chips(app)


# --- Top-k and similarity underneath --------------------------------------------------------------------


def test_top_k_breaks_ties_in_vocabulary_order_and_ignores_thresholds() -> None:
    vocabulary = GenreVocabulary.from_names(["Action", "Comedy", "Drama", "Horror", "Romance"])
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.1])
    assert vocabulary.top_k(scores, 3) == [("Comedy", 0.9), ("Horror", 0.9), ("Action", 0.5)]
    assert vocabulary.top_k(np.full(5, 0.2), 3) == [("Action", 0.2), ("Comedy", 0.2), ("Drama", 0.2)]
    assert [genre for genre, _ in vocabulary.top_k(scores, 10)] == ["Comedy", "Horror", "Action", "Drama", "Romance"]
    assert vocabulary.decode(scores, 0.95) == []  # nothing reaches the threshold, yet the top 3 exist
    assert len(vocabulary.top_k(scores, 3)) == 3


def test_an_uploaded_posters_nearest_neighbour_is_itself_and_its_mirror_image_ranks_it_at_the_top(
    tiny_model: TinyModel, index: SimilarityIndex
) -> None:
    movies = [m for m in tiny_model.usable_movies() if m.poster == "jpeg"][::6]
    pixels = [validate_upload(tiny_model.poster_path(m).read_bytes(), "poster.jpg").pixels for m in movies]
    embedder = PosterEmbedder(tiny_model.settings.weights_dir)
    plain, mirrored = embedder.embed(pixels), embedder.embed([p[:, ::-1] for p in pixels])
    mirror_ranks = []
    for movie, vector, flipped in zip(movies, plain, mirrored, strict=True):
        # The catalog's own embedding of the poster and the upload's agree: nearest is itself, similarity 1.
        [first] = index.nearest(index.vector(movie.imdb_id), k=1)
        assert first.imdb_id == movie.imdb_id and first.similarity == pytest.approx(1.0, abs=1e-5)
        [first] = index.nearest(vector, k=1)
        assert first.imdb_id == movie.imdb_id and first.similarity == pytest.approx(1.0, abs=1e-4)
        ranking = [n.imdb_id for n in index.nearest(flipped, k=5)]
        assert movie.imdb_id in ranking, f"the mirrored {movie.imdb_id} is not among its 5 nearest: {ranking}"
        mirror_ranks.append(ranking.index(movie.imdb_id))
    assert mirror_ranks.count(0) >= 0.75 * len(mirror_ranks), mirror_ranks


def test_a_tab_over_its_memory_budget_forgets_its_oldest_posters_and_says_which(
    with_model: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ui.model

    monkeypatch.setattr(ui.model, "MAX_SESSION_BYTES", 1)  # room for the newest poster alone
    (_, first), (_, second), (_, third) = (poster_of(with_model, n) for n in range(3))
    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value(("first.jpg", first, "image/jpeg")).run()
    assert not app.info and len(chips(app)) == 3

    app.file_uploader(key="poster_upload").set_value(("second.jpg", second, "image/jpeg")).run()
    assert not app.exception
    [message] = [shown_text(info.body) for info in app.info]
    assert message.startswith("Forgotten, oldest first, to keep this tab within") and ": first.jpg." in message
    assert list(app.session_state["dropped_posters"]) == [content_hash(second)]
    assert {params["poster"] for _, params in chips(app)} == {content_hash(second)}

    # A drop larger than the budget keeps its newest posters and names the ones it could not keep.
    app.file_uploader(key="poster_upload").set_value(
        [("again first.jpg", first, "image/jpeg"), ("third.jpg", third, "image/jpeg")]
    ).run()
    [message] = [shown_text(info.body) for info in app.info]
    assert ": second.jpg, again first.jpg." in message
    assert list(app.session_state["dropped_posters"]) == [content_hash(third)]
    assert {params["poster"] for _, params in chips(app)} == {content_hash(third)}


# --- While the similarity index is being prepared --------------------------------------------------------


def progress_texts(app: AppTest) -> str:
    return " ".join(bar.proto.text for bar in app.get("progress"))


def test_with_no_embeddings_a_poster_gets_its_chips_at_once_and_the_similar_posters_once_prepared(
    monkeypatch: pytest.MonkeyPatch, tiny_model: TinyModel, tmp_path
) -> None:
    # A cache with the catalog and the ported weights but no embeddings: an imported run, or caches cleared.
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(tiny_model.settings.catalog_path, cache / tiny_model.settings.catalog_path.name)
    shutil.copytree(tiny_model.settings.weights_dir, cache / "weights")
    settings = dataclasses.replace(tiny_model.settings, cache_dir=cache)
    use_settings(monkeypatch, settings)
    movie, data = poster_of(tiny_model, 2)

    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value(("mine.jpg", data, "image/jpeg")).run()
    assert not app.exception and not app.error
    assert len(chips(app)) == 3
    assert "More like this is being prepared" in progress_texts(app)
    assert not [link for link in app.get("page_link") if link.proto.query_string.startswith("movie=")]
    # A gallery sorted by similarity to the movie, meanwhile: by title, saying that the order is on its way.
    gallery = open_app("pages/genre.py", genre=movie.genres[0], sort="similar", like=movie.imdb_id)
    assert "The order by similarity is being prepared" in progress_texts(gallery)
    assert gallery.selectbox(key="gallery_sort").value == "title"

    key = index_job_key(open_catalog(settings))
    deadline = time.monotonic() + 300
    while jobs.job_status(settings, key).is_active:
        assert time.monotonic() < deadline, "the index job never ended"
        time.sleep(0.2)
    assert jobs.job_status(settings, key).state == "done"

    app.run()
    assert not progress_texts(app)
    links = [dict(parse_qsl(link.proto.query_string)) for link in app.get("page_link")]
    neighbours = [params["movie"] for params in links if "movie" in params]
    assert neighbours[0] == movie.imdb_id  # the dropped poster is that movie's own poster
    gallery.run()
    assert not progress_texts(gallery)
    assert gallery.selectbox(key="gallery_sort").value == "similar"
    assert gallery_ids(gallery)[0] == movie.imdb_id


def test_the_score_chart_is_sorted_by_score_marks_each_threshold_and_says_why_top_3_and_predicted_differ(
    with_model: TinyModel,
) -> None:
    _, data = poster_of(with_model, 2)
    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value(("chart.jpg", data, "image/jpeg")).run()
    assert not app.exception
    stored = next(iter(app.session_state["dropped_posters"].values()))
    genres = rf.read_genres(with_model.run_dir)["genres"]
    thresholds = rf.read_thresholds(with_model.run_dir)
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    bars, marks = figure["data"]
    order = sorted(range(len(genres)), key=lambda i: -stored.scores[i])
    assert bars["y"] == [genres[i] for i in order]  # highest score first (the axis is reversed: on top)
    assert np.allclose(bars["x"], [stored.scores[i] for i in order], atol=1e-6)
    assert marks["name"] == "threshold" and marks["y"] == bars["y"]
    wanted = [thresholds[genres[i]] for i in order]
    assert np.allclose(marks["x"], wanted, atol=1e-6)
    passed = [stored.scores[i] >= wanted[n] for n, i in enumerate(order)]
    assert [colour == "#f5c518" for colour in bars["marker"]["color"]] == passed
    assert any("A genre is predicted when its score reaches its own threshold" in c.value for c in app.caption)


def test_the_same_file_dropped_twice_is_predicted_and_shown_once_with_a_note(with_model: TinyModel) -> None:
    _, data = poster_of(with_model, 4)
    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value(
        [("first.jpg", data, "image/jpeg"), ("copy of first.jpg", data, "image/jpeg")]
    ).run()
    assert not app.exception and not app.error
    assert len(chips(app)) == 3  # one result: three chips, not six
    assert "also uploaded as copy of first.jpg (identical file), kept once" in " ".join(
        shown_text(caption.value) for caption in app.caption
    )
