"""Security primitives every component uses: input validation, tokens, data-at-rest keys."""

from __future__ import annotations

from predis.security.validation import (
    parse_size,
    safe_path,
    validate_customer_id,
    validate_host,
    validate_image_ref,
    validate_name,
    validate_port,
)

__all__ = [
    "parse_size",
    "safe_path",
    "validate_customer_id",
    "validate_host",
    "validate_image_ref",
    "validate_name",
    "validate_port",
]
