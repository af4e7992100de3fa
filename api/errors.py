"""Errors of the API package, mapped to HTTP answers in one place (`api.app`).

FacilityError
 └── ApiError
      ├── AuthenticationError     no, a bad or an expired token; a disabled user      401
      ├── LoginFailedError        unknown user or wrong password (one answer for both) 401
      ├── PermissionDeniedError   the role may not do this to an object it sees        403
      ├── RateLimitedError        too many attempts; says when to try again             429
      │    └── LoginBackoffError  too many failed logins for one account from one client
      └── UserError               a user cannot be made or changed as asked             422
           └── UserNotFoundError  no user of that name                                404
"""

from __future__ import annotations

import math

from facility.errors import FacilityError


class ApiError(FacilityError):
    pass


class AuthenticationError(ApiError):
    pass


class LoginFailedError(AuthenticationError):
    def __init__(self) -> None:
        super().__init__("wrong username or password")


class PermissionDeniedError(ApiError):
    pass


class RateLimitedError(ApiError):
    def __init__(self, message: str, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(f"{message}; try again in {self.retry_after_s} s")


class LoginBackoffError(RateLimitedError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("too many failed logins for this account from this client", retry_after_s)


class UserError(ApiError, ValueError):
    pass


class UserNotFoundError(UserError):
    def __init__(self, username: str) -> None:
        super().__init__(f"no user {username!r}")
