"""Dataset: what is in the raw data, what is wrong with it, and how unevenly the genres are spread."""

from __future__ import annotations

import streamlit as st

from core.config import DATASET_CITATION, get_settings
from core.data import eda
from core.data.ingest.findings import KIND_CONSEQUENCES, FindingKind
from core.data.ingest.layout import LAYOUT_DESCRIPTIONS, YEAR_FOLDERS_LAYOUT
from ui import dataset_charts as charts
from ui.chips import chip_style, genre_chips
from ui.corrections import corrections_report
from ui.data import dataset_facts, findings_table, get_catalog, metadata_files_table
from ui.doubts import doubts_section
from ui.downloads import csv_download
from ui.nav import require_entry_point
from ui.poster_grid import movie_card_top, poster_grid
from ui.sections import lazy_section
from ui.text import literal_table, md_escape
from ui.welcome import welcome

require_entry_point()

chip_style()
catalog = get_catalog()
summary = catalog.summary()
facts = dataset_facts(catalog, catalog.fingerprint)
genre_counts: dict[str, int] = summary["genres"]

# A link to the doubts (`/dataset?doubts=Horror`) opens with that section first: at its usual place, below
# the charts, the link would land a long scroll above what it points to.
doubts_area = st.container() if "doubts" in st.query_params else None
welcome(facts.usable_count, genre_counts, facts.sample)
st.header("Dataset", divider="gray")

layout = str(summary.get("layout", YEAR_FOLDERS_LAYOUT))
st.caption(
    f"Layout `{layout}`: {LAYOUT_DESCRIPTIONS.get(layout, layout)}, read from its raw files "
    f"(catalog built {catalog.built_at()})."
)

columns = st.columns(6)
columns[0].metric(
    "Records", f"{summary['records']:,}", help="Records parsed from the metadata files, duplicates included"
)
columns[1].metric("Unique movies", f"{summary['unique_movies']:,}", help="Distinct movie ids")
columns[2].metric("Posters", f"{summary['posters']:,}", help="Poster image files of the dataset")
columns[3].metric("Usable movies", f"{summary['usable_movies']:,}", help="A poster that decodes and at least one genre")
columns[4].metric("Genres", f"{len(genre_counts):,}", help="Genres with at least one usable movie")
columns[5].metric("Findings", f"{sum(summary['findings'].values()):,}", help="Problems found in the raw files")

# --- What is wrong ---------------------------------------------------------------------------------------
st.header("What is wrong with the raw data")
found = {kind: count for kind, count in summary["findings"].items() if count}
literal_table(
    [
        {"finding": kind, "count": f"{count:,}", "what it means": KIND_CONSEQUENCES[FindingKind(kind)]}
        for kind, count in found.items()
    ]
)
# The list itself (a canvas grid: a new tab loads its code and draws it) once opened.
if found and (each := lazy_section(f"The {sum(found.values()):,} findings, file and line", key="section_findings")):
    with each:
        findings = findings_table(catalog, catalog.fingerprint)
        kinds = st.multiselect("Show findings of kind", options=list(found), default=list(found), key="finding_kinds")
        shown = findings[findings["kind"].isin(kinds)]
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            height=300,
            column_config={"line": st.column_config.NumberColumn(format="%d")},
        )
        csv_download(f"Download these {len(shown):,} findings (CSV)", shown, "findings.csv")

per_year = charts.per_year(catalog, catalog.fingerprint)
no_posters = per_year.loc[per_year["with_poster"] == 0, "year"].tolist()
if no_posters:
    st.warning(f"Years with records but no poster at all: {', '.join(map(str, no_posters))}.")
files = metadata_files_table(catalog, catalog.fingerprint)
encodings = files["encoding"].fillna("unreadable").value_counts()
st.caption(
    f"{len(files):,} metadata files; encodings: " + ", ".join(f"{name} × {count}" for name, count in encodings.items())
)
# Drawn once opened (ui/sections.py): a chart or a grid costs a new tab a good part of a second.
if by_year := lazy_section("Records and posters per year, and the metadata files", key="section_files"):
    with by_year:
        left, right = st.columns(2)
        left.plotly_chart(charts.per_year_chart(catalog, catalog.fingerprint), width="stretch")
        right.dataframe(
            files[["file", "encoding", "line_endings", "records", "size", "error"]],
            hide_index=True,
            width="stretch",
            height=320,
        )

st.subheader("Not movies: series and games")
not_movies = facts.not_movies
kinds_text = ", ".join(f"{kind}: {count}" for kind, count in not_movies["kind"].value_counts().items())
st.write(
    f"{len(not_movies):,} records are not movies ({kinds_text}); "
    f"{int(not_movies['usable'].sum()):,} of them are usable. Training leaves them out unless asked."
)
if len(not_movies) and (
    listed := lazy_section(f"The {len(not_movies):,} records that are not movies", "section_not_movies")
):
    with listed:
        st.dataframe(
            not_movies[["imdb_id", "title", "year", "kind", "genres", "usable"]], hide_index=True, width="stretch"
        )

# --- Genres ------------------------------------------------------------------------------------------------
st.header("How imbalanced the genres are")
imbalance = eda.genre_imbalance(genre_counts, summary["usable_movies"])
log_scale = st.toggle("Logarithmic scale", key="genre_log_scale")
with st.container(key="genre-bars"):
    st.html(charts.BARS_HOVER_STYLE + charts.imbalance_bars(imbalance, log_scale))
st.caption(
    "Usable movies per genre and their share of all usable movies. Click a bar, or a chip below, to open that genre's gallery."
)
genre_chips(list(imbalance["genre"]), key="imbalance")

# Sections further down are computed and drawn only once opened (ui/sections.py): each chart costs a new tab
# about a second of drawing.
order = list(imbalance["genre"])
if per_movie := lazy_section("Genres per movie", key="section_per_movie"):
    with per_movie:
        st.plotly_chart(charts.labels_per_movie_chart(catalog, catalog.fingerprint), width="stretch")
if together := lazy_section("Genres that come together", key="section_together"):
    with together:  # the whole width: in a half-width column each genre's column was too narrow for its name
        st.plotly_chart(charts.co_occurrence_chart(catalog, catalog.fingerprint, tuple(order)), width="stretch")
over_years = lazy_section("Genres over the years", key="section_years")
if over_years:
    with over_years:
        top = st.multiselect("Genres", order, default=order[:6], key="years_genres")
        st.plotly_chart(charts.genres_over_years_chart(catalog, catalog.fingerprint, tuple(top)), width="stretch")

sizes_section = lazy_section("Poster sizes", key="section_sizes")
if sizes_section:
    with sizes_section:
        sizes = charts.poster_sizes(catalog, catalog.fingerprint)
        size_map, aspect = charts.poster_size_charts(catalog, catalog.fingerprint)
        left, right = st.columns(2)
        left.plotly_chart(size_map, width="stretch")
        right.plotly_chart(aspect, width="stretch")
        if not sizes.empty:
            st.caption(
                f"Median size {int(sizes['poster_width'].median())}×{int(sizes['poster_height'].median())} pixels; "
                f"median aspect {sizes['aspect'].median():.2f} (portrait, about 2:3)."
            )

samples = lazy_section("Sample posters", key="section_samples")
if samples:
    with samples:
        sample_genre = st.selectbox("Genre", order, key="sample_genre")
        sample = charts.sample_posters(catalog, catalog.fingerprint, sample_genre)

        def sample_card(movie) -> None:
            poster = str(catalog.data_root / movie.poster)
            movie_card_top(movie.imdb_id, movie.title, poster, movie.poster_size, movie.poster_mtime_ns)
            st.caption(str(movie.year))

        poster_grid(sample.itertuples(), sample_card, lambda movie: f"sample-{movie.imdb_id}", "samples")

# --- Labels that look wrong --------------------------------------------------------------------------------------
with doubts_area or st.container():
    st.header("Labels that look wrong", anchor="doubts")
    doubted_genre = st.query_params.get("doubts")
    if doubted_genre is not None and doubted_genre not in genre_counts:
        st.warning(f"There is no genre {md_escape(repr(doubted_genre[:40]))}; showing every genre's candidates.")
        doubted_genre = None
    doubts_section(catalog, get_settings(), doubted_genre)

# --- Corrections -----------------------------------------------------------------------------------------------
st.header("Label corrections")
corrections_report(catalog)

st.divider()
if layout == YEAR_FOLDERS_LAYOUT:
    st.caption("Dataset: " + DATASET_CITATION)
