"""Import-only stand-in for `cc3d` on the GPU benchmark machine (see ../README.md).

The official TotalSegmentator imports `cc3d` at module level (and names its types in annotations)
but never calls it when it predicts from NIfTI files with NibabelIOWithReorient; the binary wheel
would not fit the 64 MiB carry budget. Every attribute is a placeholder type; calling anything
raises, so a path that really needs the package fails loudly.
"""

from _import_stub import module_getattr

__getattr__ = module_getattr("cc3d")
