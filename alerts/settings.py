"""The alerts settings file: work-order policy, escalation and notification channels.

public_url = "https://monitor.example.com"    # links in messages (optional)

[work_orders]                                  # see alerts.workorders.policy_from_mapping
severities.critical = { respond_s = 600 }

[escalation]
interval_s = 30                                # how often overdue orders are looked for

[[notifications]]
type = "wecom"                                 # webhook | wecom | dingtalk | feishu
name = "lifts-group"                           # unique; labels metrics, names the cursor
url_env = "WECOM_LIFTS_URL"                    # or url = "..."; keys stay out of files
secret_env = "..."                             # dingtalk / feishu / webhook signing
language = "zh-CN"                             # or "en"
events = ["created", "escalated"]              # default: created, reopened, escalated
severities = ["critical", "major"]             # default: all
max_age_s = 3600                               # older notices are dropped, and counted
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from alerts.interface import Severity
from alerts.notify.errors import NotifySettingsError
from alerts.notify.interface import Channel
from alerts.notify.relay import Filter
from alerts.notify.render import LANGUAGES
from alerts.notify.robots import DingTalkChannel, FeishuChannel, WeComChannel
from alerts.notify.webhook import WebhookChannel
from alerts.workorders import WorkOrderPolicy, WorkOrderPolicyError, policy_from_mapping
from facility.toml_file import TomlLines, parse_toml, read_text

CHANNEL_TYPES: Final = ("webhook", "wecom", "dingtalk", "feishu")
NOTIFY_EVENT_NAMES: Final = ("created", "reopened", "escalated")
_SIGNED: Final = frozenset({"webhook", "dingtalk", "feishu"})
_CHANNEL_KEYS: Final = frozenset(
    {"type", "name", "url", "url_env", "secret", "secret_env", "language", "events",
     "severities", "max_age_s"}
)  # fmt: skip


Fail = Callable[[int | None, str], NotifySettingsError]
"""Makes the error for a line of the file (None: no line to point at) and a message."""
Bad = Callable[[str | None, str], NotifySettingsError]
"""Makes the error for a key of one [[notifications]] table (None: the table itself)."""


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    channel: Channel
    accepts: Filter
    max_age_s: float


@dataclass(frozen=True, slots=True)
class AlertSettings:
    policy: WorkOrderPolicy = field(default_factory=WorkOrderPolicy)
    escalation_interval_s: float = 30.0
    public_url: str | None = None
    channels: tuple[ChannelSettings, ...] = ()


def load_alert_settings(path: Path | str, env: Mapping[str, str] | None = None) -> AlertSettings:
    path = Path(path)
    return parse_alert_settings(read_text(path, NotifySettingsError), path, env)


def parse_alert_settings(
    text: str, path: Path | str = "<settings>", env: Mapping[str, str] | None = None
) -> AlertSettings:
    """Every mistake is an error naming the file and, where it can be found, the line."""
    environ = os.environ if env is None else env
    doc = parse_toml(text, path, NotifySettingsError)
    lines = TomlLines(text)

    def fail(line: int | None, message: str) -> NotifySettingsError:
        return NotifySettingsError(path, line, message)

    unknown = sorted(set(doc) - {"public_url", "work_orders", "escalation", "notifications"})
    if unknown:
        raise fail(None, f"unknown setting(s) {', '.join(unknown)}")
    public_url = doc.get("public_url")
    if public_url is not None and not _is_http_url(public_url):
        raise fail(lines.key_line(1, "public_url")[0], "public_url must be an http(s) URL")
    try:
        policy = policy_from_mapping(_table(doc, "work_orders", fail))
    except WorkOrderPolicyError as exc:
        raise fail(None, str(exc)) from exc
    escalation = _table(doc, "escalation", fail)
    if set(escalation) - {"interval_s"}:
        raise fail(None, "escalation: the only setting is interval_s")
    interval = escalation.get("interval_s", 30.0)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise fail(None, f"escalation.interval_s must be a positive number, not {interval!r}")
    raw_channels = doc.get("notifications", [])
    if not isinstance(raw_channels, list):
        raise fail(None, "notifications must be an array of tables: [[notifications]]")
    channels = tuple(_channel(i, raw, lines, environ, fail) for i, raw in enumerate(raw_channels))
    names = [c.channel.name for c in channels]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise fail(None, f"two [[notifications]] are named {duplicate!r}; names must be unique")
    return AlertSettings(policy, float(interval), public_url, channels)


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _table(doc: Mapping[str, Any], key: str, fail: Fail) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise fail(None, f"{key} must be a table: [{key}]")
    return value


def _channel(
    index: int, raw: Any, lines: TomlLines, env: Mapping[str, str], fail: Fail
) -> ChannelSettings:
    start = lines.header_line("notifications", index)
    where = f"notifications[{index}]"

    def bad(key: str | None, message: str) -> NotifySettingsError:
        line = lines.key_line(start, key)[0] if key else start
        return fail(line, f"{where}: {message}")

    if not isinstance(raw, Mapping):
        raise bad(None, "must be a table")
    unknown = sorted(set(raw) - _CHANNEL_KEYS)
    if unknown:
        raise bad(unknown[0], f"unknown setting(s) {', '.join(unknown)}")
    kind = raw.get("type")
    if kind not in CHANNEL_TYPES:
        raise bad("type", f"type must be one of {', '.join(CHANNEL_TYPES)}, not {kind!r}")
    name = raw.get("name", kind)
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise bad("name", f"name must be letters, digits, '-' or '_', not {name!r}")
    url = _from_env(raw, "url", env, bad)
    if url is None or not _is_http_url(url):
        raise bad("url", "needs url (or url_env naming a variable) with an http(s) URL")
    secret = _from_env(raw, "secret", env, bad)
    if secret is not None and kind not in _SIGNED:
        raise bad("secret", f"{kind} has no signing secret (its key is in the URL)")
    language = raw.get("language", "en" if kind == "webhook" else "zh-CN")
    if language not in LANGUAGES:
        raise bad("language", f"language must be one of {', '.join(LANGUAGES)}")
    events = _names(raw, "events", NOTIFY_EVENT_NAMES, bad)
    severities = _names(raw, "severities", tuple(Severity), bad)
    max_age = raw.get("max_age_s", 3600)
    if isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age <= 0:
        raise bad("max_age_s", f"max_age_s must be a positive number, not {max_age!r}")
    channel: Channel
    if kind == "webhook":
        channel = WebhookChannel(url, secret, name=name)
    elif kind == "wecom":
        channel = WeComChannel(url, language, name=name)
    elif kind == "dingtalk":
        channel = DingTalkChannel(url, secret, language, name=name)
    else:
        channel = FeishuChannel(url, secret, language, name=name)
    return ChannelSettings(channel, Filter(events, severities), float(max_age))


def _from_env(raw: Mapping[str, Any], key: str, env: Mapping[str, str], bad: Bad) -> str | None:
    direct, variable = raw.get(key), raw.get(f"{key}_env")
    if direct is not None and variable is not None:
        raise bad(key, f"give {key} or {key}_env, not both")
    if variable is not None:
        if not isinstance(variable, str) or variable not in env:
            raise bad(f"{key}_env", f"environment variable {variable!r} is not set")
        return env[variable]
    if direct is not None and not isinstance(direct, str):
        raise bad(key, f"{key} must be a string")
    return direct


def _names(raw: Mapping[str, Any], key: str, allowed: tuple[str, ...], bad: Bad) -> frozenset[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(key, f"{key} must be a list of strings")
    wrong = sorted(set(value) - set(allowed))
    if wrong:
        raise bad(key, f"unknown {key} {', '.join(wrong)} (known: {', '.join(allowed)})")
    return frozenset(value)
