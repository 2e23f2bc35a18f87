"""One row of the settings table: the default, the validator, its check id, its doc (reST)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import validation as v

__all__ = ["Setting"]


@dataclass(frozen=True)
class Setting:
    """One row: the default, the validator that checks and converts a value, its check id, its doc (reST)."""

    default: Any
    validate: v.Validator
    check_id: str
    doc: str
