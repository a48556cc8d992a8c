"""RTSTRUCT output, written with rt-utils: one ROI per organ with its name, fixed colour and SNOMED
CT code, closed planar contours slice by slice on the instances of the source CT series.

rt-utils finds the series by walking a folder and decoding every file's pixels, which would mix
series and cost a full read; we give it the checked headers of the instances the CT was read from.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from ..atomic import atomic_path
from ..errors import DicomOutputError
from ..organs import get_organ, organ_color
from . import Producer
from .series import library_errors, quiet

#: Study attributes rt-utils copies without a default; real CTs nearly always have them.
_STUDY_ATTRIBUTES = ("StudyDate", "StudyTime", "StudyID")


def _rt_utils():
    try:
        import rt_utils
        from rt_utils import ds_helper
    except ImportError:
        raise DicomOutputError("RTSTRUCT output needs rt-utils: pip install 'zoo-ensemble[dicom]'") from None
    return rt_utils, ds_helper


def write_rtstruct(organs: Sequence[str], frames: np.ndarray, headers: Sequence[Dataset], path: Path, producer: Producer) -> Path:
    """Write an RTSTRUCT of ``organs`` on the source series, atomically: ``frames[i]`` lies on the
    instance ``headers[i]`` (copies, checked by :func:`~zoo_ensemble.dicom.series.source_headers`)
    and holds ``j + 1`` where ``organs[j]`` is."""
    rt_utils, ds_helper = _rt_utils()
    headers = list(headers)
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
        for i, organ in enumerate(organs):
            mask = np.moveaxis(frames == i + 1, 0, -1)  # rt-utils: (rows, columns, slice)
            rts.add_roi(mask=mask, color=list(organ_color(organ)), name=organ, description=get_organ(organ).description)
        _describe(rts.ds, organs, producer)
        with atomic_path(path) as tmp:
            rts.ds.save_as(str(tmp))
    return path


def _describe(ds: Dataset, organs: Sequence[str], producer: Producer) -> None:
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
    for observation, organ in zip(ds.RTROIObservationsSequence, organs):
        observation.RTROIInterpretedType = "ORGAN"
        observation.ROIInterpreter = ""
        snomed = get_organ(organ).snomed
        if snomed:
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = snomed[0], "SCT", snomed[1]
            observation.RTROIIdentificationCodeSequence = DicomSequence([code])
    for roi in ds.StructureSetROISequence:
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        roi.ROIGenerationDescription = f"{producer.model_id} {producer.revision}"[:64]
