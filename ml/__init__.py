"""Django-free science core: MT-UNet, its loss, training, evaluation and metrics.

Kept import-light on purpose: ``import ml`` must not pull in torch, so that the web process and the
command-line tools that only need metadata start fast. Import the submodules you need.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
