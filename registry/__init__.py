"""The model registry: bundle versions with their lineage, and one champion per line (GUIDE §3).

Used by the service (which champion to serve, hot reload), retraining (challenger against
champion) and the ``models`` commands; a station needs none of it.
"""

from registry.model_registry import (
    DEFAULT_LINE,
    REGISTRY_JSON,
    STATUSES,
    ModelRegistry,
    VersionInfo,
)

__all__ = ["DEFAULT_LINE", "REGISTRY_JSON", "STATUSES", "ModelRegistry", "VersionInfo"]
