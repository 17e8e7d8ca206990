"""Where the data, the catalog, the caches and the runs live.

Every path the app or the training command touches comes from here, so that one environment variable
moves it and nothing else in the code needs to know. The dataset folder is only ever read: everything the
app writes goes under the cache, runs and state folders. The cache holds only what can be made again from
the dataset (safe to delete at any moment); the state folder holds what a user made by hand and nothing
else, so no cache clearing ever reaches it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_DIR_ENV = "POSTER_DATA_DIR"
CACHE_DIR_ENV = "POSTER_CACHE_DIR"
RUNS_DIR_ENV = "POSTER_RUNS_DIR"
STATE_DIR_ENV = "POSTER_STATE_DIR"
KEEP_DROPPED_ENV = "POSTER_KEEP_DROPPED"  # "0" keeps no dropped poster on the server (links work in their tab)

# The dataset sits beside the project's folder on a developer machine and in CI.
DEFAULT_DATA_DIR = PROJECT_ROOT.parent / "shared" / "datasets" / "movie-posters"
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".cache"
DEFAULT_RUNS_DIR = PROJECT_ROOT / "runs"
# What users make by hand (label corrections, dropped posters): never derived, so never under the cache.
STATE_DIR_NAME = "state"
# A catalog file of an older version that held label corrections, kept in the state folder until taken in.
LEGACY_CORRECTIONS_NAME = "catalog-with-corrections.sqlite3"
# Under the cache folder, beside the embeddings store: the models OpenVINO compiled for this machine.
COMPILED_MODELS_DIR_NAME = "openvino"

# The width of one poster card in the galleries and neighbour grids, in CSS pixels: the grid's layout and
# the thumbnails' size (made at twice this, for sharp cards on high-density screens) both follow it.
GALLERY_CARD_WIDTH_PX = 180
# Posters per page of every gallery: a genre's, a map selection's and a run's mistakes.
GALLERY_PAGE_SIZE = 24

DATASET_HOME_URL = "https://www.cs.ccu.edu.tw/~wtchu/projects/MoviePoster/index.html"
DATASET_CITATION = (
    "Wei-Ta Chu and Hung-Jui Guo, “Movie Genre Classification based on Poster Images with Deep Neural "
    "Networks”, Proceedings of the Workshop on Multimodal Understanding of Social, Affective and "
    "Subjective Attributes (MUSA2), ACM Multimedia 2017."
)


# What one upload may weigh, per uploader (each passes its own to `st.file_uploader(max_upload_size=...)`, in
# MiB as Streamlit's server counts them). The server refuses any upload above `server.maxUploadSize`
# (.streamlit/config.toml) whichever uploader it is for, so that setting is the largest of these.
MAX_UPLOAD_BYTES = 20 * 1024**2  # bytes of one poster: real ones are a few hundred KB
MAX_IMPORT_BYTES = 500 * 1024**2  # bytes of one run zip: a run that holds its model is about 25 MB

# Limits on what a user's zip may unpack to: the two original archives together, or one imported run. The
# real archives unpack to about 200 MB, at close to 1:1 (JPEG posters do not compress) and about 8:1 for the
# metadata text, and a run's files compress little (its model is mostly weights); a "zip bomb" of a few MB
# can declare, or inflate to, gigabytes of zeros and fill the disk that holds the cache or the runs.
MAX_UNPACKED_BYTES = 4 * 1024**3  # bytes, every member of both archives together, or of one run
MAX_COMPRESSION_RATIO = 100  # unpacked bytes per compressed byte, for one member
# A small member may compress far better than that (a file of blanks) without harming anyone.
COMPRESSION_RATIO_GRACE_BYTES = 1024**2  # bytes a member may unpack to before its ratio is checked

# Limits on what one metadata file may hold. The largest real file is 0.55 MB and a real record about 1.5 kB;
# far past that, a file is not the dataset's, and reading it whole would only cost memory.
MAX_METADATA_FILE_BYTES = 64 * 1024**2  # bytes on disk
MAX_RECORD_CHARS = 1024**2  # characters of one record's text (its bytes, for the ASCII the records are)

# Dropped posters kept on the server (`core.serving.dropped_posters`), so that a chip's link outlives its browser tab.
# Both bounds hold at once, the least recently dropped removed first. A real poster kept as PNG is about 0.2 MB
# (so about 2,500 fit), one of 1,024×1,024 pixels of noise at most about 3 MB.
DROPPED_POSTERS_MAX_BYTES = 500 * 1024**2  # bytes, every kept poster together
DROPPED_POSTERS_MAX_DAYS = 7  # days a poster is kept after it was last dropped

# The years a movie may have: the first moving pictures were shot in the late 1870s, and IMDb lists movies
# announced a few years ahead. Anything else (-5, 99999999999) is a typo or a placeholder, not a year to chart.
FIRST_MOVIE_YEAR = 1870
YEARS_AHEAD = 10  # years past the current one


@dataclass(frozen=True)
class Settings:
    """The folders of one installation (and whether it keeps dropped posters); plain values so they can be
    printed, compared and passed on."""

    data_dir: Path
    cache_dir: Path
    runs_dir: Path
    # Beside the runs folder unless set: the user's own work travels with their runs, not with the cache.
    state_dir: Path | None = None
    keep_dropped_posters: bool = True  # POSTER_KEEP_DROPPED=0 turns it off

    def __post_init__(self) -> None:
        if self.state_dir is None:
            object.__setattr__(self, "state_dir", self.runs_dir.parent / STATE_DIR_NAME)

    def as_environment(self) -> dict[str, str]:
        """These folders as the environment variables that `get_settings` reads: for a process of the app's
        own (a run, a job, a server under test) to see exactly these folders."""
        return {
            DATA_DIR_ENV: str(self.data_dir),
            CACHE_DIR_ENV: str(self.cache_dir),
            RUNS_DIR_ENV: str(self.runs_dir),
            STATE_DIR_ENV: str(self.state_dir),
        }

    @property
    def corrections_path(self) -> Path:
        """The user's label corrections (`core.corrections`): durable, backed up, never cleared."""
        return self.state_dir / "corrections.sqlite3"

    @property
    def legacy_corrections_path(self) -> Path:
        """A catalog file of an older version that held label corrections, kept for their store to take in."""
        return self.state_dir / LEGACY_CORRECTIONS_NAME

    @property
    def dropped_posters_dir(self) -> Path:
        """Posters users dropped, kept for their links (`core.serving.dropped_posters`): bounded, never cleared."""
        return self.state_dir / "dropped-posters"

    @property
    def catalog_path(self) -> Path:
        return self.cache_dir / "catalog.sqlite3"

    @property
    def embeddings_dir(self) -> Path:
        return self.cache_dir / "embeddings"

    @property
    def poster_looks_path(self) -> Path:
        """Each poster's look cues (`core.serving.poster_look`), keyed like the embeddings and cleared with them."""
        return self.cache_dir / "poster-looks.npz"

    @property
    def weights_dir(self) -> Path:
        return self.cache_dir / "weights"

    @property
    def compiled_models_dir(self) -> Path:
        """OpenVINO's compiled models (`core.model.inference`): derived from the weights, removed by Clear caches."""
        return self.cache_dir / COMPILED_MODELS_DIR_NAME

    @property
    def thumbnails_dir(self) -> Path:
        """Card-sized copies of the posters, made once each (derived data, removed by Clear caches)."""
        return self.cache_dir / "thumbnails"

    @property
    def jobs_dir(self) -> Path:
        """One folder per background job (`core.app.jobs`): what it runs, its progress and its log."""
        return self.cache_dir / "jobs"

    @property
    def extracted_dir(self) -> Path:
        """Where the two original zip archives are unpacked, when the data comes as archives."""
        return self.cache_dir / "extracted"


def _path_from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    # The default is resolved too: a folder reached through a symlink has one name, whichever way it is set.
    return _resolved(value or str(default))


@lru_cache(maxsize=64)
def _resolved(value: str) -> Path:
    """The absolute path of a folder setting (remembered: pages ask for the settings many times a run)."""
    return Path(value).expanduser().resolve()


def get_settings() -> Settings:
    """Read the folders from the environment, falling back to the project's defaults."""
    runs_dir = _path_from_env(RUNS_DIR_ENV, DEFAULT_RUNS_DIR)
    return Settings(
        data_dir=_path_from_env(DATA_DIR_ENV, DEFAULT_DATA_DIR),
        cache_dir=_path_from_env(CACHE_DIR_ENV, DEFAULT_CACHE_DIR),
        runs_dir=runs_dir,
        state_dir=_path_from_env(STATE_DIR_ENV, runs_dir.parent / STATE_DIR_NAME),
        keep_dropped_posters=_flag_from_env(KEEP_DROPPED_ENV, default=True),
    )


def _flag_from_env(name: str, default: bool) -> bool:
    """An on/off setting: 0, false, no or off (any case) turn it off, 1, true, yes or on turn it on."""
    value = os.environ.get(name, "").strip().lower()
    if value in {"0", "false", "no", "off"}:
        return False
    if value in {"1", "true", "yes", "on"}:
        return True
    return default
