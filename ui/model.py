"""The model side for the pages: the active model, the poster embedder and the similarity index, each
loaded once per server (`st.cache_resource`), and the posters a user dropped, kept in their session (and on
the server, `core.serving.dropped_posters`, so that their links outlive the session).

TensorFlow is imported here, so only the pages that predict pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import streamlit as st

from core.app import jobs, model_choice
from core.app.jobs import JobStatus
from core.config import Settings, get_settings
from core.data.catalog import Catalog
from core.serving.dropped_posters import PosterNotKept, keep_dropped, load_dropped
from core.serving.novelty import Likeness, NoveltyLine, likeness, novelty_line
from core.serving.poster_index import (
    INDEX_JOB,
    PosterEmbedder,
    PosterReader,
    cached_index,
    index_job_key,
    index_poster_cues,
)
from core.serving.poster_look import look_cues
from core.serving.predict import LoadedModel, RunModelError, load_run_model, predict_images
from core.serving.similar import PosterIndex, SimilarityIndex
from core.serving.uploads import ValidatedPoster, validate_upload
from ui.heap import freeze_long_lived_objects

_SESSION_POSTERS = "dropped_posters"
# A browser tab's posters live in the server's memory for as long as the tab does: both bounds hold, and the
# oldest posters are forgotten first (with a message). A kept poster is at most about 3 MB (core.serving.uploads).
MAX_SESSION_POSTERS = 50
MAX_SESSION_BYTES = 200 * 1024 * 1024


@dataclass
class DroppedPoster:
    """A poster a user uploaded, as the session keeps it: its pixels, embedding and scores."""

    poster: ValidatedPoster
    embedding: np.ndarray
    scores: np.ndarray | None = None
    run_id: str | None = None  # the model that gave the scores

    @cached_property
    def look_cues(self) -> np.ndarray:
        """Its look (`core.serving.poster_look`), measured once: a resize and a colour count, a few ms."""
        return look_cues(self.poster.pixels)

    @property
    def nbytes(self) -> int:
        """What keeping it costs: its pixels, embedding and scores."""
        scores = 0 if self.scores is None else self.scores.nbytes
        return self.poster.pixels.nbytes + self.embedding.nbytes + scores


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _load_model(run_dir: str, model_mtime_ns: int) -> LoadedModel:
    loaded = load_run_model(run_dir, get_settings().compiled_models_dir)
    freeze_long_lived_objects()
    return loaded


def active_model(settings: Settings | None = None) -> tuple[str, LoadedModel] | None:
    """The active run's id and loaded model, or None (with a message shown) when there is none usable."""
    settings = settings or get_settings()
    run_id = model_choice.active_model_id(settings)
    if run_id is None:
        return None
    path = settings.runs_dir / run_id
    try:
        return run_id, _load_model(str(path), (path / "model.keras").stat().st_mtime_ns)
    except (RunModelError, OSError) as error:
        st.error(f"The active model (run {run_id}) cannot be used: {error}")
        return None


@st.cache_resource(show_spinner="Loading the poster embedder…")
def embedder(weights_dir: str) -> PosterEmbedder:
    embedder = PosterEmbedder(Path(weights_dir), get_settings().compiled_models_dir)
    freeze_long_lived_objects()
    return embedder


INDEX_POLL_SECONDS = 2.0  # how often a page waiting for the similarity index looks at the job's progress


class _IndexNotReady(Exception):
    """Raised inside the cached loader so that "not ready yet" is never cached."""


@st.cache_resource(show_spinner=False, max_entries=2)
def _ready_index(_catalog: Catalog, fingerprint: str, embeddings_dir: str, _settings: Settings) -> PosterIndex:
    index = cached_index(_catalog, _settings)
    if index is None:
        raise _IndexNotReady
    return index


def similarity_index(catalog: Catalog, settings: Settings | None = None, start: bool = True) -> PosterIndex | JobStatus:
    """The index of the catalog's posters when it is ready, else the background job preparing it.

    Never waits: embedding the whole dataset takes minutes the first time, so it is a background job
    (`core.app.jobs`), one per catalog for every tab and server, started here when the index is missing
    (unless `start` is False: then the job's status is returned as it is).
    """
    settings = settings or get_settings()
    key = index_job_key(catalog)
    status = jobs.job_status(settings, key)
    if status.is_active:
        return status
    try:
        return _ready_index(catalog, catalog.fingerprint, str(settings.embeddings_dir), settings)
    except _IndexNotReady:
        return jobs.ensure_job(settings, key, INDEX_JOB) if start else status


@st.cache_resource(show_spinner="Measuring how the catalog's posters look (once per catalog)…", max_entries=2)
def _novelty_line(
    _index: SimilarityIndex, _catalog: Catalog, fingerprint: str, embeddings_dir: str
) -> NoveltyLine | None:
    return novelty_line(_index, index_poster_cues(_catalog, _index.ids, get_settings()))


def poster_likeness(catalog: Catalog, item: DroppedPoster, settings: Settings | None = None) -> Likeness | None:
    """How near a dropped image comes to the catalog's posters, or None while the similarity index is not
    ready (or the catalog is too small to draw a line): a warning that is not sure stays silent.

    The line is one pass over the whole index, and needs every poster's look cues (kept on disk by the index's
    job), so it is kept per server beside the index, under the same key.
    """
    settings = settings or get_settings()
    index = similarity_index(catalog, settings)
    if not isinstance(index, SimilarityIndex):
        return None
    line = _novelty_line(index, catalog, catalog.fingerprint, str(settings.embeddings_dir))
    return None if line is None else likeness(index, line, item.embedding, item.look_cues)


def index_or_progress(
    catalog: Catalog, what: str, settings: Settings | None = None, start: bool = True
) -> PosterIndex | None:
    """The index, or None after showing that `what` is being prepared; the page reruns once it is ready.

    With `start=False` (a page where similarity is a side dish, e.g. a movie's) the preparation waits for
    the user's click, so that browsing alone never sets a core to work for minutes.
    """
    settings = settings or get_settings()
    state = similarity_index(catalog, settings, start)
    if isinstance(state, PosterIndex):
        return state
    if state.is_active or state.state == "failed":
        _index_progress(catalog, what, settings)
    else:
        st.info(f"{what} needs the dataset's posters embedded once, in the background (its progress shows here).")
        if st.button("Embed them now", key=f"index_start_{what}", icon=":material/play_arrow:"):
            jobs.start_job(settings, index_job_key(catalog), INDEX_JOB)
            st.rerun()
    return None


@st.fragment(run_every=INDEX_POLL_SECONDS)
def _index_progress(catalog: Catalog, what: str, settings: Settings) -> None:
    """The job's progress, redrawn alone every few seconds; the whole page reruns when the index is ready."""
    state = similarity_index(catalog, settings)
    if isinstance(state, PosterIndex):
        st.rerun()
    if state.state == "failed":
        st.error(f"{what} cannot be prepared: {state.error}", icon=":material/error:")
        if st.button("Try again", key=f"index_retry_{what}", icon=":material/refresh:"):
            jobs.start_job(settings, index_job_key(catalog), INDEX_JOB)
            st.rerun()
        return
    counted = f": {state.done:,} of {state.total:,} posters embedded" if state.total else ""
    st.progress(
        state.fraction,
        text=f"{what} is being prepared (the dataset's posters are embedded once, in the background){counted}",
    )


@st.cache_data(show_spinner="Reading the poster…", max_entries=64)
def _catalog_poster(
    _model: LoadedModel, run_dir: str, model_mtime_ns: int, poster_path: str, stamp: str
) -> tuple[ValidatedPoster, np.ndarray]:
    poster = validate_upload(Path(poster_path).read_bytes(), Path(poster_path).name)
    return poster, predict_images(_model, [poster.pixels])[0]


def catalog_poster_scores(model: LoadedModel, poster_path: str) -> tuple[ValidatedPoster, np.ndarray]:
    """A catalog poster, read as an upload is, and the model's scores for it; once per model and poster version.

    A movie's page is drawn again on every click on it (a genre of the evidence map, the opacity slider);
    reading the file and a forward pass of the model each time was most of a warm rerun (0.8 s on one
    core). Keyed by the model file's modification time and the poster's size and modification time, so a
    retrained model or a replaced poster is read afresh. Raises UploadError or OSError as reading does.
    """
    stat = Path(poster_path).stat()
    model_mtime = (model.run_dir / "model.keras").stat().st_mtime_ns
    return _catalog_poster(model, str(model.run_dir), model_mtime, poster_path, f"{stat.st_size}:{stat.st_mtime_ns}")


def session_posters() -> dict[str, DroppedPoster]:
    return st.session_state.setdefault(_SESSION_POSTERS, {})


_KEPT_ON_SERVER = "dropped_posters_kept"  # content hashes this session has already kept on the server


def keep_on_server(posters: list[ValidatedPoster], settings: Settings | None = None) -> None:
    """Keep newly dropped posters on the server for their links, once per session (not on every rerun of the
    page that still shows them); says so when the server cannot keep them."""
    settings = settings or get_settings()
    kept = st.session_state.setdefault(_KEPT_ON_SERVER, set())
    new = [poster for poster in posters if poster.content_hash not in kept]
    if not new:
        return
    try:
        keep_dropped(settings, new)
    except PosterNotKept as error:
        st.warning(str(error), icon=":material/cloud_off:")
        return
    kept.update(poster.content_hash for poster in new)


def linked_poster(content_hash: str, settings: Settings | None = None) -> DroppedPoster:
    """The poster a link names: dropped in this session, or kept on the server (then embedded again, and kept
    in this session from now on). Raises `core.serving.dropped_posters.PosterLinkError` saying why there is none."""
    settings = settings or get_settings()
    found = session_posters().get(content_hash)
    if found is not None:
        return found
    poster = load_dropped(settings, content_hash)
    # Fresh, as a new drop: the session's bounds may forget older posters of this tab to make room for it.
    [restored], _ = remember([poster], settings)
    return restored


@st.cache_resource(show_spinner=False, max_entries=2)
def _reader(_model: LoadedModel, run_dir: str, model_mtime_ns: int, weights_dir: str) -> PosterReader:
    return PosterReader(_model, lambda: embedder(weights_dir), get_settings().compiled_models_dir)


def poster_reader(model: LoadedModel, settings: Settings | None = None) -> PosterReader:
    """Scores and similarity embeddings of dropped posters for this model: one backbone pass when it can."""
    settings = settings or get_settings()
    mtime = (model.run_dir / "model.keras").stat().st_mtime_ns
    return _reader(model, str(model.run_dir), mtime, str(settings.weights_dir))


def remember(
    posters: list[ValidatedPoster], settings: Settings | None = None, model: tuple[str, LoadedModel] | None = None
) -> tuple[list[DroppedPoster], list[DroppedPoster]]:
    """Embed the new posters and keep them in the session under their content hash (known ones are reused);
    with the active `model` (run id, model) they are scored in the same pass when the model allows.

    Returns the posters kept, in upload order, and those forgotten to stay within the session's bounds
    (oldest first; a drop larger than the bounds loses its own first posters too).
    """
    settings = settings or get_settings()
    store = session_posters()
    for poster in posters:  # a poster dropped again counts as the newest
        if poster.content_hash in store:
            store[poster.content_hash] = store.pop(poster.content_hash)
    new = [poster for poster in posters if poster.content_hash not in store]
    if new and model is not None:
        run_id, loaded = model
        scores, vectors = poster_reader(loaded, settings).read([poster.pixels for poster in new])
        for poster, vector, row in zip(new, vectors, scores, strict=True):
            store[poster.content_hash] = DroppedPoster(poster, vector, row, run_id)
    elif new:
        vectors = embedder(str(settings.weights_dir)).embed([poster.pixels for poster in new])
        for poster, vector in zip(new, vectors, strict=True):
            store[poster.content_hash] = DroppedPoster(poster, vector)
    forgotten = []
    total = sum(item.nbytes for item in store.values())
    while len(store) > MAX_SESSION_POSTERS or (total > MAX_SESSION_BYTES and len(store) > 1):
        oldest = store.pop(next(iter(store)))
        total -= oldest.nbytes
        forgotten.append(oldest)
    return [store[poster.content_hash] for poster in posters if poster.content_hash in store], forgotten


def forgotten_message(forgotten: list[DroppedPoster]) -> str:
    """Why posters of this tab disappeared, naming them (shown as text, never as Markdown)."""
    names = ", ".join(item.poster.filename for item in forgotten[:5])
    more = f" and {len(forgotten) - 5} more" if len(forgotten) > 5 else ""
    return (
        f"Forgotten, oldest first, to keep this tab within {MAX_SESSION_POSTERS} posters and "
        f"{MAX_SESSION_BYTES // 2**20} MB on the server: {names}{more}. Drop them again to see them."
    )


def score(dropped: list[DroppedPoster], run_id: str, model: LoadedModel) -> None:
    """Fill in each poster's genre scores from the model (once per poster and model)."""
    todo = [item for item in dropped if item.scores is None or item.run_id != run_id]
    if todo:
        scores = predict_images(model, [item.poster.pixels for item in todo])
        for item, row in zip(todo, scores, strict=True):
            item.scores, item.run_id = row, run_id
