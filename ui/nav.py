"""The app's pages and their URL paths, in one place so that links, `switch_page` and tests agree."""

from __future__ import annotations

DATASET_PAGE = "pages/dataset.py"
GENRE_PAGE = "pages/genre.py"
MOVIE_PAGE = "pages/movie.py"
PREDICT_PAGE = "pages/predict.py"
TRAINING_PAGE = "pages/training.py"

# (file, title, icon, url path); the first page is the default one at "/".
PAGES: list[tuple[str, str, str, str]] = [
    (DATASET_PAGE, "Dataset", ":material/dataset:", "dataset"),
    (GENRE_PAGE, "Genre gallery", ":material/photo_library:", "genre"),
    (MOVIE_PAGE, "Movie", ":material/movie:", "movie"),
]
