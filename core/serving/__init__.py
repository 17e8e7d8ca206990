"""Answering with a trained model: loading a run's model and predicting (`predict`), uploaded posters
checked at the edge (`uploads`, which reads the bytes with `upload_formats` and brings the pixels to RGB
with `upload_pixels`), similarity over the catalog (`similar`, `poster_index`), the map of all
posters (`projection`), evidence maps (`explain`, computed by `grad_cam`, drawn over the poster by
`heat_overlay`), and the model taken away (`export`, `model_card`).

May import: `core.data`, `core.corrections`, `core.model`, `core.training` and the foundation. Background
work here is a plain function the app's jobs call; it knows nothing of the jobs themselves.
"""
