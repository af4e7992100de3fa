"""Chat-group robots of WeCom (企业微信), DingTalk (钉钉) and Feishu (飞书).

Each takes a markdown or text message at a webhook address and answers HTTP 200 with an error
code in the body, so the body decides: 0 is sent, the documented "too frequent" / "busy" codes
are retried (each robot takes about 20 messages a minute), anything else (bad key, signature or
keyword mismatch) is refused for good. Signing follows each vendor's documented scheme.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Collection
from dataclasses import dataclass

import orjson

from alerts.notify.interface import Notice, Outcome, Request, Verdict
from alerts.notify.render import detail_lines, headline, link_label
from alerts.notify.webhook import http_verdict

JSON = {"Content-Type": "application/json; charset=utf-8"}
MARKDOWN_LIMIT = 4000
"""Bytes; WeCom caps markdown at 4096 and DingTalk is similar."""


def reply_verdict(
    status: int, body: bytes, code_keys: tuple[str, ...], retry_codes: Collection[int]
) -> Verdict:
    by_status = http_verdict(status)
    if by_status is not None:
        return by_status
    try:
        reply = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Verdict(Outcome.FAILED, f"unreadable reply: {body[:100]!r}")
    if not isinstance(reply, dict):
        return Verdict(Outcome.FAILED, f"unexpected reply: {body[:100]!r}")
    code = next((reply[k] for k in code_keys if k in reply), None)
    message = next((str(reply[k]) for k in ("errmsg", "msg", "StatusMessage") if k in reply), "")
    if code == 0:
        return Verdict(Outcome.SENT)
    if not isinstance(code, int):
        return Verdict(Outcome.FAILED, f"reply without an error code: {body[:100]!r}")
    outcome = Outcome.RETRY if code in retry_codes else Outcome.FAILED
    return Verdict(outcome, f"code {code}: {message}")


def _markdown(notice: Notice, language: str, *, bullet: str) -> str:
    lines = [f"**{headline(notice, language)}**", ""]
    lines += [f"{bullet}{line}" for line in detail_lines(notice, language)]
    if notice.url:
        lines.append(f"[{link_label(language)}]({notice.url})")
    text = "\n".join(lines)
    encoded = text.encode()
    if len(encoded) > MARKDOWN_LIMIT:
        text = encoded[: MARKDOWN_LIMIT - 3].decode(errors="ignore") + "..."
    return text


def _plain(notice: Notice, language: str) -> str:
    lines = [headline(notice, language), *detail_lines(notice, language)]
    if notice.url:
        lines.append(notice.url)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class WeComChannel:
    """`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...` (the key is the secret)."""

    url: str
    language: str = "zh-CN"
    name: str = "wecom"

    def request(self, notice: Notice, now_ms: int) -> Request:
        content = _markdown(notice, self.language, bullet="> ")
        body = {"msgtype": "markdown", "markdown": {"content": content}}
        return Request(self.url, orjson.dumps(body), JSON)

    def verdict(self, status: int, body: bytes) -> Verdict:
        # 45009: API frequency limit; -1: system busy.
        return reply_verdict(status, body, ("errcode",), {45009, -1})


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """Base64 HMAC-SHA256 keyed by the secret over "timestamp\\nsecret" (DingTalk 加签)."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class DingTalkChannel:
    """`https://oapi.dingtalk.com/robot/send?access_token=...`, signed when a secret is set."""

    url: str
    secret: str | None = None
    language: str = "zh-CN"
    name: str = "dingtalk"

    def request(self, notice: Notice, now_ms: int) -> Request:
        url = self.url
        if self.secret:
            query = urllib.parse.urlencode(
                {"timestamp": now_ms, "sign": dingtalk_sign(now_ms, self.secret)}
            )
            url += ("&" if "?" in url else "?") + query
        body = {
            "msgtype": "markdown",
            "markdown": {
                "title": headline(notice, self.language),
                "text": _markdown(notice, self.language, bullet="- "),
            },
        }
        return Request(url, orjson.dumps(body), JSON)

    def verdict(self, status: int, body: bytes) -> Verdict:
        # 130101: sending too fast; -1: system busy.
        return reply_verdict(status, body, ("errcode",), {130101, -1})


def feishu_sign(timestamp_s: int, secret: str) -> str:
    """Base64 HMAC-SHA256 keyed by "timestamp\\nsecret" over nothing (Feishu 签名校验)."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


@dataclass(frozen=True, slots=True)
class FeishuChannel:
    """`https://open.feishu.cn/open-apis/bot/v2/hook/...`, signed when a secret is set."""

    url: str
    secret: str | None = None
    language: str = "zh-CN"
    name: str = "feishu"

    def request(self, notice: Notice, now_ms: int) -> Request:
        body: dict[str, object] = {
            "msg_type": "text",
            "content": {"text": _plain(notice, self.language)},
        }
        if self.secret:
            timestamp = now_ms // 1000
            body["timestamp"] = str(timestamp)
            body["sign"] = feishu_sign(timestamp, self.secret)
        return Request(self.url, orjson.dumps(body), JSON)

    def verdict(self, status: int, body: bytes) -> Verdict:
        # 9499: too many requests; 11232: frequency limited.
        return reply_verdict(status, body, ("code", "StatusCode"), {9499, 11232})
