"""Why this genre, on a page: a poster's evidence map for each of its top genres, drawn over the poster,
with a genre selector, an opacity slider and the plain poster one click away (`render_evidence`).

The computing is `core.serving.explain`'s. Here: the explainer is built (traced and checked) once per model and
server with `st.cache_resource`, keyed like `ui.model` keys its models (the run folder and its model
file's modification time). The maps are cached with `st.cache_data`, keyed by that model, the poster's
content hash, its top genres and the drawn size: one call computes the maps of all the top genres in one
forward pass, so switching genre or moving the slider only blends and redraws. `st.cache_data` rather than
a dict inside the explainer because it is shared by every session of the server, bounded (`max_entries`),
and emptied by the sidebar's "Clear caches" with the app's other caches. Maps are kept as uint8 (a screen
shows 256 levels) and at the drawn size, so an entry weighs at most about 1 MB.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st
from PIL import Image

from core.serving.explain import Explainer, make_explainer
from core.serving.grad_cam import ExplainError
from core.serving.heat_overlay import overlay
from core.serving.predict import LoadedModel
from core.training.run_folder import MODEL_FILE
from ui.heap import freeze_long_lived_objects
from ui.text import md_escape

PLAIN_POSTER = "Plain poster"
DEFAULT_OPACITY = 80  # % of colour at the strongest evidence (weaker evidence is fainter, none is transparent)
DRAWN_MAX_SIDE = 720  # pixels: posters are drawn no larger (a page column is narrower), and so are their maps


@st.cache_resource(show_spinner="Preparing the evidence maps for this model…", max_entries=2)
def _explainer(run_dir: str, model_mtime_ns: int, _loaded: LoadedModel) -> tuple[Explainer | None, str]:
    """The model's explainer, or None and why not (an error is cached too, so it is not retried per run)."""
    try:
        explainer = make_explainer(_loaded)
    except ExplainError as error:
        return None, str(error)
    freeze_long_lived_objects()
    return explainer, ""


@st.cache_data(show_spinner="Finding the evidence for the top genres…", max_entries=64)
def _evidence_maps(
    run_dir: str,
    model_mtime_ns: int,
    poster_key: str,
    genres: tuple[str, ...],
    size: tuple[int, int],
    _explainer: Explainer,
    _poster: np.ndarray,
) -> dict[str, np.ndarray]:
    """genre → uint8 (height, width) map at the drawn size, for every top genre at once."""
    return {
        genre: np.rint(heat * 255).astype(np.uint8) for genre, heat in _explainer.maps(_poster, genres, size).items()
    }


@st.cache_data(show_spinner=False, max_entries=64)
def _drawn_poster(poster_key: str, _poster: np.ndarray) -> np.ndarray:
    """The poster at most DRAWN_MAX_SIDE pixels on its longest side (a 40-megapixel upload is not sent whole)."""
    height, width = _poster.shape[:2]
    scale = DRAWN_MAX_SIDE / max(height, width)
    if scale >= 1:
        return _poster
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(_poster).resize(size, Image.Resampling.LANCZOS))


@st.cache_data(show_spinner=False)
def _colour_scale() -> np.ndarray:
    """The colour bar under a map: each level as `overlay` blends it over mid grey at full opacity, so the
    low end shows the transparency a reader sees on the poster."""
    levels = np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (14, 1))
    grey = np.full((*levels.shape, 3), 128, dtype=np.uint8)
    return overlay(grey, levels, 1.0)


def _model_mtime_ns(loaded: LoadedModel) -> int:
    try:
        return (loaded.run_dir / MODEL_FILE).stat().st_mtime_ns
    except OSError:
        return 0  # a run deleted while shown: its model is still in memory and still explains


def _percent(score: float) -> str:
    return f"{score:.0%}".replace("%", " %")


def _put_in_url(choice_key: str, url_param: str | None) -> None:
    if url_param is not None:
        st.query_params[url_param] = st.session_state[choice_key]


def render_evidence(
    loaded: LoadedModel,
    poster: np.ndarray,
    poster_key: str,
    top_genres: Sequence[tuple[str, float]],
    key: str,
    url_param: str | None = None,
) -> None:
    """Draw the poster with the evidence map of one of its top genres over it, where the call is.

    `loaded`: the active model (`ui.model.active_model()[1]`). `poster`: the RGB uint8 pixels the scores
    were predicted from (`ValidatedPoster.pixels`, or `core.serving.predict.decode_image_file(path)`), so that the
    map explains exactly that prediction. `poster_key`: a stable id of those pixels (the content hash, or
    the movie's IMDb id), the cache key of its maps. `top_genres`: the (genre, score) pairs of the chips,
    `loaded.vocabulary.top_k(scores, 3)`. `key`: unique on the page, for the widgets' keys. `url_param`:
    the query parameter that holds the chosen genre, on pages where the poster itself is in the URL (a
    movie's), so that a link opens the same map; a genre that is not among the choices gets a note.

    A selector (the genres, then "Plain poster"; the first genre by default), an opacity slider, the image
    and a caption that says what the heat means. A model that cannot be explained gets the plain poster
    and a caption saying why; the page goes on.
    """
    drawn = _drawn_poster(poster_key, poster)
    genres = [genre for genre, _ in top_genres]
    scores = dict(top_genres)
    run_dir, mtime_ns = str(loaded.run_dir), _model_mtime_ns(loaded)
    explainer, problem = _explainer(run_dir, mtime_ns, loaded) if genres else (None, "no genre to explain")
    if explainer is None:
        st.image(drawn, width="stretch", alt="The poster")
        st.caption(md_escape(f"No evidence map: {problem}"))
        return

    choice_key, opacity_key = f"evidence-genre-{key}", f"evidence-opacity-{key}"
    options = [*genres, PLAIN_POSTER]
    if st.session_state.get(choice_key) not in options:  # another model's genres were chosen under this key
        st.session_state[choice_key] = options[0]
    if url_param is not None:  # the URL says what is shown
        wanted = st.query_params.get(url_param)
        if wanted is not None and wanted not in options:
            st.caption(md_escape(f"The link asks for {wanted[:40]!r}, which is not one of this poster's top genres."))
        st.session_state[choice_key] = wanted if wanted in options else options[0]
    choice = st.segmented_control(
        "Why this genre: pick one to see where the poster supports it (this changes the picture, it opens nothing)",
        options,
        required=True,
        format_func=md_escape,
        key=choice_key,
        on_change=_put_in_url,
        args=(choice_key, url_param),
        wrap=True,  # a page column is narrow, and genre names are long
        help=f"Where the poster pushes the genre's score up ({explainer.method}). The brighter, the stronger.",
    )
    opacity = st.slider(
        "Heat opacity",
        0,
        100,
        DEFAULT_OPACITY,
        step=5,
        format="%d %%",
        key=opacity_key,
        disabled=choice == PLAIN_POSTER,
    )
    if choice == PLAIN_POSTER:
        st.image(drawn, width="stretch", alt="The plain poster")
        st.caption("The plain poster, without a heat map.")
        return

    heat = _evidence_maps(run_dir, mtime_ns, poster_key, tuple(genres), drawn.shape[:2], explainer, poster)[choice]
    plain_side, evidence_side = st.columns(2, gap="small")
    with plain_side:
        st.image(drawn, width="stretch", alt="The poster as it is, beside its evidence")
        st.caption("The poster")
    with evidence_side:
        st.image(
            overlay(drawn, heat.astype(np.float32) / 255, opacity / 100),
            width="stretch",
            alt=f"Evidence map for {choice} over the poster",
            output_format="JPEG",
        )
        st.image(_colour_scale(), width="stretch", alt="The evidence map's colour scale")
        st.caption("none (the poster shows through) → the strongest evidence")
    if heat.max() == 0:
        caption = (
            f"{choice} ({_percent(scores[choice])}): nothing in this poster pushes it up (no positive evidence), "
            "so the map is empty."
        )
    else:
        caption = (
            f"Where the poster pushes {choice} ({_percent(scores[choice])}) up: the brighter, the stronger "
            "the evidence (each map is scaled to its own peak)."
        )
    st.caption(md_escape(caption))
