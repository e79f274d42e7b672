"""Import-only stand-in for `SimpleITK` on the GPU benchmark machine (see ../README.md).

The official TotalSegmentator imports `SimpleITK` at module level (and names its types in annotations)
but never calls it when it predicts from NIfTI files with NibabelIOWithReorient; the binary wheel
would not fit the 64 MiB carry budget. Every attribute is a placeholder type; calling anything
raises, so a path that really needs the package fails loudly.
"""


class _StubType(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stub(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args, **kwargs):
        raise RuntimeError(f"{cls.__qualname__}: import-only stub of the GPU bench; "
                           "the real package is not installed")


def _stub(qualname):
    return _StubType(qualname, (), {"__qualname__": qualname})


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _stub(f"SimpleITK.{name}")
