"""The dataset and what is derived from it alone: layouts (year folders, manifest CSV, `MovieGenre.csv`),
their findings, the catalog (an SQLite file rebuilt from the raw files whenever they change: derived data,
safe to delete at any moment), genres, titles, thumbnails and the figures of the Dataset page.

May import: the foundation (`core.config`, `core.atomic`, `core.file_lock`), the standard library, pandas,
Pillow. Nothing of the model, training or the app: the catalog must build without TensorFlow.
"""
