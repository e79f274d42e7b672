"""Upsample a CT to a finer voxel spacing (trilinear), as the GPU benchmark's realistic input.

    python3 benches/gpu/make_input.py IN.nii.gz OUT.nii.gz [sx sy sz]   (default 0.8 0.8 1.0 mm)

example_ct.nii.gz (122x101x112 at 3 mm) becomes about 458x379x336 voxels. The affine keeps the
input's orientation and origin corner-aligned (align_corners=True); values are rounded to int16
as a scanner would store them. Uses torch (on the GPU machine) so scipy is not needed.
"""
import sys

import nibabel as nib
import numpy as np
import torch


def main() -> None:
    if len(sys.argv) not in (3, 6):
        sys.exit(__doc__)
    target = [float(v) for v in sys.argv[3:6]] if len(sys.argv) == 6 else [0.8, 0.8, 1.0]
    img = nib.load(sys.argv[1])
    data = np.asarray(img.dataobj, dtype=np.float32)
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    shape = [max(1, round(n * z / t)) for n, z, t in zip(data.shape, zooms, target)]
    tensor = torch.from_numpy(data)[None, None]
    up = torch.nn.functional.interpolate(tensor, size=shape, mode="trilinear", align_corners=True)
    out = np.rint(up[0, 0].numpy()).clip(-32768, 32767).astype(np.int16)
    # Corner-aligned: voxel i of the output sits at i * (n - 1) / (m - 1) of the input.
    scale = np.diag([(n - 1) / max(m - 1, 1) for n, m in zip(data.shape, shape)] + [1.0])
    affine = img.affine @ scale
    out_img = nib.Nifti1Image(out, affine)
    out_img.header.set_xyzt_units(*img.header.get_xyzt_units())
    nib.save(out_img, sys.argv[2])
    print(f"wrote {sys.argv[2]}: {out.shape} voxels at {[round(float(z), 3) for z in out_img.header.get_zooms()[:3]]} mm")


if __name__ == "__main__":
    main()
