"""RTSTRUCT output, written with rt-utils: one ROI per organ with its name, fixed colour and SNOMED
CT code, closed planar contours slice by slice on the instances of the source CT series.

rt-utils finds the series by walking a folder and decoding every file's pixels, which would mix
series and cost a full read; we give it the checked headers of the instances the CT was read from.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from ..atomic import atomic_path
from ..errors import DicomOutputError
from ..organs import get_organ, organ_color
from ..volumes import Volume
from . import Producer
from .series import frames_of, library_errors, quiet, source_headers

#: Study attributes rt-utils copies without a default; real CTs nearly always have them.
_STUDY_ATTRIBUTES = ("StudyDate", "StudyTime", "StudyID")


def _rt_utils():
    try:
        import rt_utils
        from rt_utils import ds_helper
    except ImportError:
        raise DicomOutputError("RTSTRUCT output needs rt-utils: pip install 'zoo-ensemble[dicom]'") from None
    return rt_utils, ds_helper


def write_rtstruct(masks: Mapping[str, np.ndarray], volume: Volume, path: Path, producer: Producer) -> Path:
    """Write ``masks`` (organ -> boolean mask in ``volume``'s canonical order) as an RTSTRUCT on
    the DICOM series ``volume`` was read from, atomically."""
    rt_utils, ds_helper = _rt_utils()
    headers = source_headers(volume.dicom_headers, path, "RTSTRUCT")
    rows, cols = (float(v) for v in headers[0].PixelSpacing)
    if abs(rows - cols) > 1e-4 * max(rows, cols):
        # rt-utils scales both pixel axes by the first spacing value: contours would be misplaced.
        raise DicomOutputError(f"{path}: RTSTRUCT output needs square pixels; this CT's are {rows:g} x {cols:g} mm")
    for ds in headers:
        for attr in _STUDY_ATTRIBUTES:
            if attr not in ds:
                setattr(ds, attr, "")  # on a copy of the header: the volume's and the files stay as they are
    # rt-utils sets attributes pydicom 3 deprecates (warned and logged) and prints a line per empty ROI
    with library_errors(path, "rt-utils", "RTSTRUCT"), warnings.catch_warnings(), quiet("pydicom"), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", DeprecationWarning)
        rts = rt_utils.RTStruct(headers, ds_helper.create_rtstruct_dataset(headers))
        for organ, mask in masks.items():
            frames = frames_of(volume.to_sitk(mask.astype(np.uint8)), headers, str(path)).astype(bool)
            info = get_organ(organ)
            rts.add_roi(mask=np.moveaxis(frames, 0, -1), color=list(organ_color(organ)), name=organ, description=info.description)
        _describe(rts.ds, masks, producer)
        with atomic_path(path) as tmp:
            rts.ds.save_as(str(tmp))
    return path


def _describe(ds: Dataset, masks: Mapping[str, np.ndarray], producer: Producer) -> None:
    """Say who made the structure set, and what each ROI is (an organ, with its code)."""
    ds.Manufacturer = "zoo-ensemble"
    ds.ManufacturerModelName = producer.model_id
    ds.SoftwareVersions = producer.software_version
    ds.DeviceSerialNumber = producer.revision[:64]
    ds.StructureSetLabel = producer.model_id[:16]
    ds.StructureSetName = producer.model_id[:64]
    ds.SeriesDescription = f"{producer.model_id} organs"[:64]
    ds.SeriesNumber = 9902
    if "InstitutionName" in ds:
        del ds.InstitutionName  # rt-utils writes its authors' institute here
    for observation, organ in zip(ds.RTROIObservationsSequence, masks):
        observation.RTROIInterpretedType = "ORGAN"
        observation.ROIInterpreter = ""
        snomed = get_organ(organ).snomed
        if snomed:
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = snomed[0], "SCT", snomed[1]
            observation.RTROIIdentificationCodeSequence = Sequence([code])
    for roi in ds.StructureSetROISequence:
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        roi.ROIGenerationDescription = f"{producer.model_id} {producer.revision}"[:64]
