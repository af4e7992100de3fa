"""Tokens never reach a log line: a filter that masks `access_token=...` in URLs.

The dashboard no longer puts its token in the event stream's URL, but a client may (with
`api.token_in_query` on, or by mistake): uvicorn's access log would then write a working
token to disk. The filter rewrites the record's message and arguments (the access log passes
the path as an argument) before any handler formats it.
"""

from __future__ import annotations

import logging
import re
from typing import Final

_TOKEN_IN_URL: Final = re.compile(r"((?:access_token|token)=)[^&\s\"']+", re.IGNORECASE)
MASKED_LOGGERS: Final = ("uvicorn.access", "uvicorn.error", "uvicorn")


def mask(text: str) -> str:
    """`text` with the value of every `access_token=` / `token=` parameter replaced by ***."""
    return _TOKEN_IN_URL.sub(r"\1***", text)


class TokenMaskFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: mask(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def mask_tokens_in_logs() -> None:
    """Put the filter on uvicorn's loggers (once; it survives uvicorn's logging config, which
    replaces handlers but keeps filters)."""
    for name in MASKED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenMaskFilter) for f in logger.filters):
            logger.addFilter(TokenMaskFilter())
