"""Base class for every recipe section: strict (unknown keys are errors), typed, torch-free."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A recipe section. Unknown keys are errors; values are validated on assignment too.

    Dumps use the recipe's key names (`as`, not the attribute `as_`), so a saved resolved recipe loads back.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), serialize_by_alias=True
    )
