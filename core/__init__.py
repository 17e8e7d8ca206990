"""The engine of Poster Genre Explorer: everything that is not UI, usable headless (CLI, notebook, GPU box).

It never imports Streamlit. It is grouped into rooms, each a package whose `__init__` says what it holds and
what it may import, lowest first:

- `data`: the dataset as distributed, read into the catalog (derived, safe to delete), findings, EDA;
- `corrections`: the user's label corrections and their durable store (not derived data);
- `model`: backbones (a Keras-free registry), the weight port, feature extractors, the input pipeline and
  the one embeddings store;
- `training`: splits, run configuration, the training modes over one epoch loop, metrics, the run folder;
- `evaluation`: where a trained model goes wrong (mistake galleries, out-of-fold label doubts);
- `serving`: answering with a trained model (prediction, similarity, the map, evidence maps, export);
- `app`: what the pages drive (runs and jobs, estimates, the views' URLs).

Beside them, the foundation every room may use: `config` (every path and limit), `atomic` (whole-or-nothing
writes), `file_lock`, `background` (work in a process of its own: launch, liveness, stop, status) and
`cluster` (this process's place among `TF_CONFIG`'s workers). The commands `python -m core.ingest`,
`core.train`, `core.predict`, `core.export` and `core.embed` are thin entry points.
"""
