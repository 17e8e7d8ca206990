"""Training a model: splits (`split`, drawn by `stratified_split` or cut by `temporal_split`, and the
genres each supports in `genre_support`), the run's configuration, one module per mode (fast
heads on cached features, fine-tune, scratch, on images) over one epoch loop, refits and the temporal twin,
metrics (`metrics`, `genre_metrics`) beside their baselines (`baselines`), the decision thresholds
(`thresholds`) and the report of a part (`metrics_report`), and the run folder a run writes
(`python -m core.train` drives it).

May import: `core.data`, `core.corrections`, `core.model` and the foundation. Never the app or serving.
"""
