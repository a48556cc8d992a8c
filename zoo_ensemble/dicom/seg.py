"""DICOM-SEG output, written with highdicom: one segment per organ, coded with its SNOMED CT
concept, naming the model and its revision, referencing the CT series and instances it came from.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from ..atomic import atomic_path
from ..errors import DicomOutputError
from ..organs import get_organ, organ_color
from . import Producer
from .series import library_errors, quiet

#: A local coding scheme for organs a plugin registered without a SNOMED CT code.
LOCAL_SCHEME = "99ZOO"
SERIES_NUMBER = 9901


def _highdicom():
    try:
        import highdicom
    except ImportError:
        raise DicomOutputError("DICOM-SEG output needs highdicom: pip install 'zoo-ensemble[dicom]'") from None
    return highdicom


def write_seg(organs: Sequence[str], frames: np.ndarray, headers: Sequence[Dataset], path: Path, producer: Producer) -> Path:
    """Write a binary DICOM-SEG of ``organs``, atomically: ``frames[i]`` lies on the source
    instance ``headers[i]`` (checked with :func:`~zoo_ensemble.dicom.series.source_headers`)
    and holds ``j + 1`` where ``organs[j]`` is."""
    hd = _highdicom()
    with library_errors(path, "highdicom", "DICOM-SEG"), warnings.catch_warnings(), quiet("highdicom"):
        # highdicom warns about optional attributes real CTs often lack, and logs that an organ
        # found nowhere keeps its (empty) frames
        warnings.simplefilter("ignore", UserWarning)
        seg = hd.seg.Segmentation(
            source_images=list(headers),
            pixel_array=frames,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[_segment(hd, i + 1, organ, producer) for i, organ in enumerate(organs)],
            series_instance_uid=hd.UID(),
            series_number=SERIES_NUMBER,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="zoo-ensemble",
            manufacturer_model_name=producer.model_id,
            software_versions=producer.software_version,
            device_serial_number=producer.revision[:64],
            series_description=f"{producer.model_id} organs"[:64],
            content_label="ORGANS",
            content_description=f"{producer.model_id} ({producer.revision})"[:64],
            omit_empty_frames=True,
        )
        with atomic_path(path) as tmp:
            seg.save_as(str(tmp))
    return path


def _segment(hd, number: int, organ: str, producer: Producer):
    from pydicom.sr.codedict import codes

    info = get_organ(organ)
    code, meaning, scheme = (*info.snomed, "SCT") if info.snomed else (organ, info.description, LOCAL_SCHEME)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=producer.model_id,
        family=codes.cid7162.ArtificialIntelligence,
        version=producer.revision[:64],
        source=f"zoo-ensemble {producer.software_version}",
    )
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=organ,
        segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=hd.sr.CodedConcept(code, scheme, meaning),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        tracking_uid=hd.UID(),
        tracking_id=organ,
        display_color=hd.color.CIELabColor.from_rgb(*organ_color(organ)),
    )
