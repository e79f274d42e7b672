"""Shared body of the import-only stand-ins in this folder (SimpleITK, cc3d, blosc2) for the
GPU benchmark machine (see README.md): every attribute is a placeholder type; calling anything
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


def module_getattr(package):
    """A module-level `__getattr__` for `package` that hands out placeholder types."""

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stub(f"{package}.{name}")

    return __getattr__
