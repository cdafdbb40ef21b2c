"""regen: nerve recovery after percutaneous cryoneurolysis."""

from regen._version import __version__

__all__ = ["__version__"]
