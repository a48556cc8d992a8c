"""DICOM in and out: the source series' headers checked (``series``), DICOM-SEG written with
highdicom (``seg``) and RTSTRUCT written with rt-utils (``rtstruct``).

Both outputs reference the CT series they were computed from, so they need that series: a CT
read from a NIfTI file cannot give them. highdicom and rt-utils are the optional ``dicom`` extra
(``pip install 'zoo-ensemble[dicom]'``); pydicom, which reads the headers, is a dependency.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Producer:
    """Who made a segmentation, as DICOM outputs record it: the model id, its revision (a Hub
    commit, or the weights' sha256 for a model that came with a plugin or a folder) and the
    zoo-ensemble version."""

    model_id: str
    revision: str
    software_version: str
