#!/usr/bin/env python3
"""A CT-sized DICOM series for timing the DICOM output writers: example_ct.nii.gz (3 mm)
upsampled to square 0.71484375 mm pixels (512 columns, 424 rows) and 1.5 mm slices (224 axial
slices), written with pydicom as uncompressed int16 CT slices.

Run: python3 benches/dicom_output/make_series.py OUT_FOLDER
"""
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from scipy.ndimage import zoom

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO.parent / "shared" / "data" / "totalseg-examples" / "example_ct.nii.gz"


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    img = nib.as_closest_canonical(nib.load(str(SOURCE)))  # RAS: i = R->L reversed, j = P->A, k = I->S
    data = img.get_fdata(dtype=np.float32)
    extent = np.array(data.shape) * np.array(img.header.get_zooms()[:3])
    n_slices = int(round(extent[2] / 1.5))
    pixel = extent[0] / 512  # square pixels, as CT has them
    rows = int(round(extent[1] / pixel))
    volume = zoom(data, (512 / data.shape[0], rows / data.shape[1], n_slices / data.shape[2]), order=1)
    spacing = [pixel, pixel, extent[2] / n_slices]
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(n_slices):
        # DICOM rows run anterior -> posterior, columns right -> left (LPS +x = left).
        plane = volume[:, ::-1, k].T  # (rows = A->P, columns = R->L)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(out / f"slice_{k:04d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientName, ds.PatientID = "CT", "BENCH^SERIES", "BENCH"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20260101", "120000", "", "1"
        ds.ReferringPhysicianName, ds.PatientBirthDate, ds.PatientSex = "", "", "O"
        ds.Manufacturer, ds.SeriesNumber, ds.InstanceNumber = "synthetic", 1, k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-extent[0] / 2, -extent[1] / 2, -400 + k * spacing[2]]
        ds.PixelSpacing = [round(spacing[1], 6), round(spacing[0], 6)]
        ds.SliceThickness = round(spacing[2], 6)
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = np.clip(np.rint(plane + 1024), -32768, 32767).astype(np.int16).tobytes()
        ds.save_as(out / f"slice_{k:04d}.dcm", enforce_file_format=True)
    print(f"{n_slices} slices of {rows}x512, spacing {spacing}")


if __name__ == "__main__":
    main()
