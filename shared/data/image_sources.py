"""Where the image sources lived before they became the `shared.data.sources` package.

Kept so that `from shared.data.image_sources import ...` in older code and notebooks still
works; new code imports from `shared.data` or `shared.data.sources`.
"""

from shared.data.sources import *  # noqa: F403
from shared.data.sources import __all__  # noqa: F401
