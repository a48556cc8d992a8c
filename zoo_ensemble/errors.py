"""Errors the toolkit raises on bad input.

Every error a user can cause is a :class:`ZooError` subclass whose message names the problem in
one line; the CLI prints that line and exits non-zero without a traceback.
"""

from __future__ import annotations


class ZooError(Exception):
    """Base class of every error caused by input the user can fix."""

    exit_code: int = 2


class ImageReadError(ZooError):
    """A path that is not a readable image (or DICOM folder with no readable series)."""


class DicomSeriesError(ImageReadError):
    """A DICOM series that cannot be one CT volume: mixed sizes, missing or doubled slices, not CT."""


class DicomOutputError(ZooError):
    """A DICOM output that cannot be made: no source series, a missing optional library."""


class ImageDimensionError(ZooError):
    """An image with the wrong number of dimensions (e.g. 2D where a volume is needed)."""


class NotHounsfieldError(ZooError):
    """Intensities that do not look like Hounsfield units."""


class GeometryMismatchError(ZooError):
    """Two images that must share a voxel grid do not."""


class LabelMapError(ZooError):
    """An unknown or malformed label map, or labels that contradict it."""


class UnknownOrganError(ZooError):
    """An organ name that is not in the vocabulary."""


class DatasetError(ZooError):
    """A dataset folder that cannot be read as one of the supported layouts."""


class MetricError(ZooError):
    """Inputs that a metric cannot compare (shape or spacing mismatch)."""


class ModelFormatError(ZooError):
    """A model folder whose config, card or weights are missing, damaged or inconsistent."""


class UnknownModelError(ZooError):
    """A model id or architecture that nothing registers."""


class TrainingError(ZooError):
    """Training cannot start or continue with the given data and settings."""


class HubError(ZooError):
    """The Hub could not be reached, refused a request, or lacks what was asked for."""


class TruncatedFileError(ImageReadError):
    """A file whose data are shorter than its header promises (cut short, or damaged)."""


class ImageSpacingError(ZooError):
    """A voxel spacing no CT has (a header that lies, or a unit mistake)."""


class OutputWriteError(ZooError):
    """A write that failed (a full disk, a quota, a size limit, an I/O error): the target was
    left as it was, and no partial file remains."""

    def __init__(self, target: object, why: str):
        self.target, self.why = str(target), why
        super().__init__(f"{target}: could not be written ({why}); left as it was")
