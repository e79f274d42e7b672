"""The shared example_ct_sm.nii.gz and its official label map example_seg.nii.gz (real
weights) upsampled 2x to 1.5 mm (244x202x60 voxels; image order 1 as int16, labels nearest
as uint8), the case the radiomics and preview benches run on.

    from example_at_1_5mm import example_at_1_5mm
    image, labels, affine = example_at_1_5mm(shared_dir)
"""
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import zoom


def example_at_1_5mm(shared: Path):
    ct = nib.load(shared / "example_ct_sm.nii.gz")
    seg = np.asarray(nib.load(shared / "example_seg.nii.gz").dataobj)
    affine = ct.affine.copy()
    affine[:3, :3] /= 2
    affine[:3, 3] -= ct.affine[:3, :3] @ [0.25, 0.25, 0.25]
    image = zoom(np.asarray(ct.dataobj).astype(np.float32), 2, order=1).round().astype(np.int16)
    labels = seg.repeat(2, 0).repeat(2, 1).repeat(2, 2).astype(np.uint8)
    return image, labels, affine
