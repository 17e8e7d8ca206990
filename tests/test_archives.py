"""The original zip archives as a hostile or unlucky user may hand them over: bombs, damaged data, unsafe
names, a process killed while unpacking, two processes unpacking at once. Each is refused or survived with
a clear message, and nothing is left behind in the cache."""

from __future__ import annotations

import io
import queue
import random
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from core import config
from core.data.ingest.layout import DataNotFoundError, locate_layout
from core.ingest import main as ingest_main
from tests.apptest_helpers import open_page, use_settings
from tests.conftest import make_settings

POSTER = "Movie_Poster_Dataset/2001/tt0000001.jpg"
METADATA = "groundtruth/2001.txt"
RECORD = '{ "Title" : "A", "imdbID" : "tt0000001", "Genre" : "Drama" }\n'


def write_archives(folder: Path, posters: dict[str, bytes] | None = None, metadata: bytes | None = None) -> Path:
    """The two archives under their real names, with one poster and one record unless told otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "Movie_Poster_Dataset.zip", "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in (posters or {POSTER: b"\xff\xd8 not really a JPEG"}).items():
            bundle.writestr(name, data)
    with zipfile.ZipFile(folder / "Movie_Poster_Metadata.zip", "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(METADATA, metadata if metadata is not None else RECORD.encode())
    return folder


def left_in(extract_dir: Path) -> list[str]:
    """Everything in the unpack folder but its empty lock file."""
    if not extract_dir.exists():
        return []
    return sorted(
        entry.name
        for entry in extract_dir.iterdir()
        if not (entry.name == ".unpack.lock" and entry.stat().st_size == 0)
    )


def test_a_bomb_that_declares_more_than_the_total_limit_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(config, "MAX_UNPACKED_BYTES", 2 * 1024**2)
    noise = random.Random(0).randbytes(1024**2)  # incompressible, so only the total trips
    posters = {f"Movie_Poster_Dataset/2001/tt000000{n}.jpg": noise for n in range(3)}
    data = write_archives(tmp_path / "data", posters)
    with pytest.raises(DataNotFoundError, match=r"Movie_Poster_Dataset.zip is refused: .* past the 2.0 MiB allowed"):
        locate_layout(data, tmp_path / "extracted")
    assert left_in(tmp_path / "extracted") == []


def test_a_member_that_expands_past_the_ratio_limit_is_refused(tmp_path: Path) -> None:
    data = write_archives(tmp_path / "data", metadata=bytes(40 * 1024**2))  # 40 MiB of zeros in about 40 kB
    assert (data / "Movie_Poster_Metadata.zip").stat().st_size < 100_000
    with pytest.raises(
        DataNotFoundError, match=r"Movie_Poster_Metadata.zip is refused: .*'groundtruth/2001.txt' expands"
    ):
        locate_layout(data, tmp_path / "extracted")
    assert left_in(tmp_path / "extracted") == []


def test_a_member_whose_header_understates_its_size_is_refused_while_unpacking(tmp_path: Path) -> None:
    data = write_archives(tmp_path / "data", metadata=bytes(8 * 1024**2))
    archive = data / "Movie_Poster_Metadata.zip"
    raw = bytearray(archive.read_bytes())
    # Both headers say 1,000 bytes unpacked, so the declared sizes pass every check.
    true_size = (8 * 1024**2).to_bytes(4, "little")
    for at in [i for i in range(len(raw) - 4) if raw[i : i + 4] == true_size]:
        raw[at : at + 4] = (1000).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises(DataNotFoundError, match=r"Movie_Poster_Metadata\.zip is not a valid zip file"):
        locate_layout(data, tmp_path / "extracted")
    assert left_in(tmp_path / "extracted") == []


def damaged_metadata_archive(folder: Path) -> Path:
    """Valid archives whose metadata member's compressed bytes are corrupt (the central directory is intact)."""
    text = "".join(RECORD.replace("tt0000001", f"tt{n:07d}") for n in range(20_000)).encode()
    data = write_archives(folder, metadata=text)
    archive = data / "Movie_Poster_Metadata.zip"
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as bundle:
        member = bundle.getinfo(METADATA)
    start = member.header_offset + 30 + len(member.filename) + len(member.extra) + member.compress_size // 2
    raw[start : start + 64] = b"\xff" * 64
    archive.write_bytes(bytes(raw))
    return data


def test_a_damaged_member_gives_the_clear_message_on_the_command_line_and_leaves_nothing(
    tmp_path: Path, capsys
) -> None:
    data = damaged_metadata_archive(tmp_path / "data")
    code = ingest_main(["--data-dir", str(data), "--cache-dir", str(tmp_path / "cache")])
    assert code == 2
    error = capsys.readouterr().err
    assert "Movie_Poster_Metadata.zip is not a valid zip file" in error
    assert "'groundtruth/2001.txt' is damaged" in error
    assert left_in(tmp_path / "cache" / "extracted") == []


def test_an_archive_with_unsafe_names_is_refused_every_time_and_leaves_nothing(tmp_path: Path) -> None:
    for name in ("../escape.jpg", "/etc/escape.jpg"):
        data = write_archives(tmp_path / "data", {POSTER: b"\xff\xd8", name: b"x"})
        for _ in range(2):
            with pytest.raises(DataNotFoundError, match="holds an unsafe path"):
                locate_layout(data, tmp_path / "extracted")
    assert left_in(tmp_path / "extracted") == []
    assert not (tmp_path / "escape.jpg").exists()


def test_staging_left_by_a_killed_unpack_is_removed_by_the_next(tmp_path: Path) -> None:
    data = write_archives(tmp_path / "data")
    extract = tmp_path / "extracted"
    stale = extract / ".0123456789abcdef.4194305.partial" / "Movie_Poster_Dataset" / "2001"
    stale.mkdir(parents=True)
    (stale / "tt0000002.jpg").write_bytes(bytes(100_000))
    layout = locate_layout(data, extract)
    assert (layout.poster_root / "2001" / "tt0000001.jpg").is_file()
    assert left_in(extract) == [layout.root.name]


# A process that unpacks the archives, then holds the poster folder it was given until told to look at it
# again. With `--pause`, it first stops at the first member it opens (past any "already unpacked?" check).
_UNPACKER = """
import json, os, sys, zipfile
from pathlib import Path
from core.data.ingest.layout import locate_layout
if "--pause" in sys.argv:
    opened = zipfile.ZipFile.open
    def pausing_open(self, *args, **kwargs):
        if not getattr(zipfile, "paused", False):
            zipfile.paused = True
            print("unpacking", flush=True)
            sys.stdin.readline()
        return opened(self, *args, **kwargs)
    zipfile.ZipFile.open = pausing_open
layout = locate_layout(Path(sys.argv[1]), Path(sys.argv[2]))
held = os.open(layout.poster_root / "2001", os.O_RDONLY)
print("holding", flush=True)
sys.stdin.readline()
year = layout.poster_root / "2001"
now = os.stat(year).st_ino if year.exists() else None
print(json.dumps({"files": len(os.listdir(held)), "same_folder": now == os.fstat(held).st_ino}), flush=True)
"""


class Unpacker:
    def __init__(self, data: Path, extract: Path, pause: bool = False) -> None:
        command = [sys.executable, "-c", _UNPACKER, str(data), str(extract)] + (["--pause"] if pause else [])
        root = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen(
            command, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: [self.lines.put(line.strip()) for line in self.process.stdout], daemon=True
        ).start()

    def next_line(self) -> str:
        try:
            return self.lines.get(timeout=60)
        except queue.Empty:
            self.process.kill()
            pytest.fail(f"the unpacker said nothing: {self.process.stderr.read()}")

    def tell(self) -> None:
        self.process.stdin.write("\n")
        self.process.stdin.flush()


def waits_for_a_lock(pid: int) -> bool:
    """Whether the process is queued behind another's `flock` (Linux lists waiters with "->")."""
    return any("->" in line and f" {pid} " in line for line in Path("/proc/locks").read_text().splitlines())


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks to see a waiting process")
def test_two_processes_unpacking_at_once_never_remove_the_folder_the_other_reads(tmp_path: Path) -> None:
    posters = {f"Movie_Poster_Dataset/2001/tt{n:07d}.jpg": b"\xff\xd8" + bytes(1000) for n in range(1, 51)}
    data, extract = write_archives(tmp_path / "data", posters), tmp_path / "extracted"
    first, second = Unpacker(data, extract, pause=True), None
    try:
        assert first.next_line() == "unpacking"  # the first is half-way through
        second = Unpacker(data, extract)
        second_holding, give_up = False, time.monotonic() + 60
        while not second_holding and not waits_for_a_lock(second.process.pid):
            # Either it queues behind the first, or it unpacks on its own and holds its folder.
            try:
                second_holding = second.lines.get(timeout=0.01) == "holding"
            except queue.Empty:
                assert second.process.poll() is None, second.process.stderr.read()
                assert time.monotonic() < give_up, "the second process neither waited nor unpacked"
        first.tell()
        assert first.next_line() == "holding"
        if not second_holding:
            assert second.next_line() == "holding"
        second.tell()
        first.tell()
        for unpacker in (second, first):
            assert unpacker.next_line() == '{"files": 50, "same_folder": true}'
    finally:
        for unpacker in (first, second):
            if unpacker is not None:
                unpacker.process.kill()
                unpacker.process.wait()
    assert len(left_in(extract)) == 1


def test_the_app_shows_a_damaged_archive_as_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = damaged_metadata_archive(tmp_path / "data")
    use_settings(monkeypatch, make_settings(data, tmp_path / "work"))
    app = open_page("pages/dataset.py")
    assert not app.exception
    assert app.error[0].body.startswith(
        "The dataset's archives cannot be used: Movie_Poster_Metadata.zip is not a valid"
    )
    assert left_in(tmp_path / "work" / "cache" / "extracted") == []
