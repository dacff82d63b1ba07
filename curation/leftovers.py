"""Temporary datasets and folders of interrupted commands: naming, liveness, cleanup.

Commands that replace something build the new version under a temporary name and swap it in at
the end (``ingest`` a dataset, ``train`` a checkpoint folder, ``export`` an output folder). The
temporary name records its owner: ``<target>.tmp-<host>-<pid>-<random>`` for a dataset,
``.<target>.tmp-<host>-<pid>-<random>`` (and ``.old-`` for a folder being retired) for a folder,
where ``<host>`` is a short hash of the machine's host name. A command killed with ``kill -9``
leaves it behind; it is a *leftover of a dead run* when:

- its owner ran on this machine and that process is gone (or its pid now belongs to a process
  started after the leftover was made);
- or its owner is unknown (another machine, or a name from before owners were recorded) and it
  was last changed more than :data:`STALE_AFTER` seconds ago.

An ``ingest --append`` adds samples to the live dataset, so it lists the files it adds in a marker
``<media>/<dataset>/.pending/append-<host>-<pid>-<random>.json`` and marks the append done in the
project record (the new source entry's ``append``) before removing the marker.

Leftovers of live runs are never touched, so a concurrent command is not broken. Dead leftovers
are removed, except where they are the only complete copy: a dataset leftover that was finished
(persistent) while its target is missing is renamed into place (the interrupted swap is
completed), and a retired ``.old-`` folder whose target is missing is put back. The samples of an
append that was not marked done are removed (rolled back).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path

import fiftyone as fo
import psutil
from fiftyone import ViewField as F

from curation.media import media_base, media_root
from curation.schema import project_info

STALE_AFTER = 24 * 3600
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_OWNED = r"(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}"
_LEGACY = r"[0-9a-f]{8}"
_DATASET = re.compile(rf"^(?P<target>.+)\.tmp-(?:{_OWNED}|{_LEGACY})$")
_FOLDER = re.compile(rf"^\.(?P<target>.+)\.(?P<kind>tmp|old)-(?:{_OWNED}|{_LEGACY})$")
_PENDING = re.compile(rf"^append-(?P<token>{_OWNED})\.json$")


@dataclass(frozen=True)
class Leftover:
    """A temporary dataset or folder of a command that may have been interrupted.

    Attributes:
        path: the dataset name, or the folder's path.
        target: the dataset name or folder path it was to replace.
        kind: ``dataset``, ``tmp`` (a folder being built) or ``old`` (a folder being retired).
        owner: who made it, in words.
        dead: whether its owner is gone (see the module).
        complete: a dataset that was finished; only the swap into place was missing.
    """

    path: str
    target: str
    kind: str
    owner: str
    dead: bool
    complete: bool = False


def _token() -> str:
    return f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def temp_dataset_name(name: str) -> str:
    """A temporary dataset name for building ``name``, owned by this process."""
    return f"{name}.tmp-{_token()}"


def temp_folder(target: Path, kind: str = "tmp") -> Path:
    """A hidden sibling of ``target`` owned by this process (``kind``: ``tmp`` or ``old``)."""
    return target.parent / f".{target.name}.{kind}-{_token()}"


def is_temp_dataset_name(name: str) -> bool:
    """Whether ``name`` is a temporary dataset name (see :func:`temp_dataset_name`)."""
    return _DATASET.match(name) is not None


def _owner_state(host: str | None, pid: str | None, changed_at: float) -> tuple[str, bool]:
    """``(owner in words, dead)`` for an owner recorded as ``host``/``pid``, given when the
    leftover was last changed (seconds since the epoch)."""
    if host != _HOST or pid is None:
        where = "an unknown process" if host is None else f"pid {pid} on another host"
        return where, time.time() - changed_at > STALE_AFTER
    owner = f"pid {pid}"
    try:
        process = psutil.Process(int(pid))
        gone = process.status() == psutil.STATUS_ZOMBIE or process.create_time() > changed_at + 1
    except psutil.NoSuchProcess:
        gone = True
    except psutil.Error:  # not ours to inspect: assume it is alive
        gone = False
    return owner, gone


def dataset_leftovers(name: str | None = None) -> list[Leftover]:
    """Temporary datasets (of dataset ``name``, or of every dataset), dead or alive."""
    pattern = f"{name}.tmp-*" if name is not None else "*.tmp-*"
    found = []
    for entry in fo.list_datasets(glob_patt=pattern, info=True):
        match = _DATASET.match(entry["name"])
        if match is None or (name is not None and match["target"] != name):
            continue
        created_at = entry["created_at"]
        created = created_at.replace(tzinfo=timezone.utc).timestamp() if created_at else 0.0
        owner, dead = _owner_state(match["host"], match["pid"], created)
        found.append(
            Leftover(
                entry["name"], match["target"], "dataset", owner, dead, bool(entry["persistent"])
            )
        )
    return sorted(found, key=lambda leftover: leftover.path)


def folder_leftovers(folder: Path, target: str | None = None) -> list[Leftover]:
    """Hidden temporary folders in ``folder`` (of ``folder / target``, or of any), dead or
    alive."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        match = _FOLDER.match(path.name)
        if match is None or (target is not None and match["target"] != target):
            continue
        try:
            changed = path.lstat().st_mtime
        except FileNotFoundError:  # removed meanwhile by its owner
            continue
        owner, dead = _owner_state(match["host"], match["pid"], changed)
        found.append(Leftover(str(path), str(folder / match["target"]), match["kind"], owner, dead))
    return found


def _settle_dataset(leftover: Leftover) -> str:
    dataset = fo.load_dataset(leftover.path)
    if leftover.complete and not fo.dataset_exists(leftover.target):
        dataset.name = leftover.target
        return f"finished replacing dataset {leftover.target!r} (interrupted before the rename)"
    dataset.delete()
    return f"removed dataset {leftover.path!r} (left by a killed run)"


def _settle_folder(leftover: Leftover) -> str:
    path, target = Path(leftover.path), Path(leftover.target)
    if leftover.kind == "old" and not target.exists():
        os.replace(path, target)
        return f"restored {target} (a replacement was interrupted)"
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    return f"removed {path} (left by a killed run)"


def clean_dataset_leftovers(name: str | None = None) -> list[str]:
    """Settle the dead temporary datasets of ``name`` (or of every dataset); returns what was
    done, one line each. Complete leftovers whose target is missing are renamed into place."""
    # complete ones first: one of them fills a missing target, the others are removed
    dead = [d for d in dataset_leftovers(name) if d.dead]
    return [_settle_dataset(d) for d in sorted(dead, key=lambda d: (not d.complete, d.path))]


def clean_folder_leftovers(folder: Path, target: str | None = None) -> list[str]:
    """Settle the dead hidden temporary folders in ``folder`` (of ``folder / target``, or of
    any); returns what was done, one line each."""
    # retired folders first: one whose target is missing is put back before builds are removed
    dead = [f for f in folder_leftovers(folder, target) if f.dead]
    return [_settle_folder(f) for f in sorted(dead, key=lambda f: (f.kind != "old", f.path))]


def replace_folder(staging: Path, target: Path) -> None:
    """Swap the finished folder ``staging`` in as ``target``, replacing an existing one.

    The old folder is first renamed to a hidden ``.old-`` sibling, so a kill at any moment
    leaves the old or the new folder in place (see :func:`clean_folder_leftovers`).
    """
    if not target.exists():
        os.replace(staging, target)
        return
    retired = temp_folder(target, "old")
    os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def describe(leftover: Leftover) -> str:
    """One line: what the leftover is, whose it is and what ``curate cleanup`` does with it."""
    what = {
        "dataset": f"temporary dataset for {leftover.target!r}",
        "append": f"record of an append to {leftover.target!r}",
    }.get(leftover.kind, f"temporary folder for {leftover.target}")
    if not leftover.dead:
        return f"{leftover.path}  ({what}, in use by {leftover.owner}: kept)"
    return f"{leftover.path}  ({what}, left by {leftover.owner}, gone: `curate cleanup` settles it)"


def _pending_folder(name: str) -> Path:
    return media_root(name) / ".pending"


def _appended(name: str, token: str) -> bool:
    """Whether the append ``token`` finished (its source entry is in the project record)."""
    if not fo.dataset_exists(name):
        return False
    sources = project_info(fo.load_dataset(name)).get("sources", [])
    return any(source.get("append") == token for source in sources)


def _settle_append(name: str, marker: Path) -> str:
    """Remove the samples that an unfinished append (``marker``) added to ``name``, then the
    marker; returns what was done."""
    token = _PENDING.match(marker.name)["token"]
    done = f"removed the marker of a finished append to {name!r}"
    if not _appended(name, token) and fo.dataset_exists(name):
        filepaths = json.loads(marker.read_text())["filepaths"]
        dataset = fo.load_dataset(name)
        added = dataset.match(F("filepath").is_in(filepaths))
        done = f"rolled back {len(added)} sample(s) of an unfinished append to {name!r}"
        dataset.delete_samples(added)
    marker.unlink(missing_ok=True)
    with suppress(OSError):  # not empty: another append is running
        marker.parent.rmdir()
    return done


@contextmanager
def pending_append(name: str, filepaths: list[str]) -> Iterator[str]:
    """Record, while samples with ``filepaths`` are added to dataset ``name``, what is being
    added; yields the token that the caller stores in the project record's new source entry
    (``"append"``) once the samples are in, which marks the append done. An append that raises
    is rolled back here; one that was killed is rolled back by :func:`clean_leftovers`."""
    token = _token()
    marker = _pending_folder(name) / f"append-{token}.json"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"dataset": name, "filepaths": list(filepaths)}))
    try:
        yield token
    finally:
        _settle_append(name, marker)


def append_leftovers(name: str) -> list[Leftover]:
    """Markers of appends to dataset ``name`` that did not finish, dead or alive."""
    folder = _pending_folder(name)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        match = _PENDING.match(path.name)
        if match is None:
            continue
        owner, dead = _owner_state(match["host"], match["pid"], path.stat().st_mtime)
        found.append(Leftover(str(path), name, "append", owner, dead))
    return found


def _project_names(name: str | None) -> list[str]:
    """``[name]``, or every dataset that has a media folder."""
    if name is not None:
        return [name]
    base = media_base()
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def find_leftovers(name: str | None = None) -> list[Leftover]:
    """Temporary datasets, checkpoint folders and unfinished appends of dataset ``name`` (or
    of all), dead or alive (export folders are found by the next export to the same place)."""
    found = dataset_leftovers(name)
    for project in _project_names(name):
        found += folder_leftovers(media_root(project) / "runs") + append_leftovers(project)
    return found


def clean_leftovers(name: str | None = None) -> list[str]:
    """Settle every dead leftover of dataset ``name`` (or of all); returns what was done."""
    done = clean_dataset_leftovers(name)
    for project in _project_names(name):
        done += clean_folder_leftovers(media_root(project) / "runs")
        dead = [leftover for leftover in append_leftovers(project) if leftover.dead]
        done += [_settle_append(project, Path(leftover.path)) for leftover in dead]
    return done
