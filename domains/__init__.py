"""One package per domain; each registers its `shared.domain.Domain` subclass on import.

`extend_path` lets a `domains/` folder elsewhere on `sys.path` (a domain that is not part
of this product, put on PYTHONPATH) add its packages here, so `pipelines` finds it the
same way it finds vision, finance and rl.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
