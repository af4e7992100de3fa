"""The one error of the identity package: bad input, said in one line."""

from __future__ import annotations

from facility.errors import FacilityError


class IdentityError(FacilityError):
    """Credentials or certificates cannot be made as asked (unknown account, unwritable
    directory, a damaged secrets file, no openssl): the message says which and why."""
