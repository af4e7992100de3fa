"""Notifications: message formats and signatures of each channel, how replies are judged, the
outbox cursor, and delivery end to end from a real work-order database to a real HTTP receiver
on loopback (retries, restarts, filters, stale notices, refusals)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from alerts.escalation import EscalationLoop
from alerts.faults import FaultOpened
from alerts.interface import Category, Severity
from alerts.notify.errors import CursorError, NotifySettingsError
from alerts.notify.interface import Notice, Outcome
from alerts.notify.outbox import Cursor, SharedCursor
from alerts.notify.relay import Filter, Relay, RelaySettings
from alerts.notify.robots import DingTalkChannel, FeishuChannel, WeComChannel
from alerts.notify.service import NoticeMaker, Notifications
from alerts.notify.webhook import WebhookChannel
from alerts.settings import parse_alert_settings
from alerts.store import WorkOrder, WorkOrderStore
from db.engine import make_engine
from db.schema import notification_cursors
from facility.site import Site
from tests.fakes import FakeClock
from tests.polling import wait_until
from tests.receiver import HttpReceiver, Reply

T0 = 1_790_000_000_000
FAST = RelaySettings(poll_s=0.02, retry_base_s=0.01, retry_cap_s=0.05, hole_grace_s=0.0)
OK_WECOM = Reply(body=b'{"errcode":0,"errmsg":"ok"}')


def order(**changes: object) -> WorkOrder:
    fields: dict[str, object] = dict(
        id=7, site_id="s", building_id="b1", unit_id="u1", device_id="p1", kind="pump",
        rule_id="pump.dry_run", severity="critical", category="equipment",
        title="Pump dry run: P1", status="open", fault_started_ms=T0, detected_ms=T0 + 30_000,
        created_ms=T0 + 30_500, updated_ms=T0 + 30_500, cleared_ms=None, source="fault",
        priority=1, respond_by_ms=T0 + 900_000, resolve_by_ms=T0 + 14_400_000,
        responded_ms=None, resolved_ms=None, closed_ms=None, team="plumbing", assignee=None,
        escalation_level=0, recurrences=0, last_fault_ms=T0, parent_id=None,
        hold_reason=None, hold_until_ms=None, resolution_code=None,
    )  # fmt: skip
    fields.update(changes)
    return WorkOrder(**fields)  # type: ignore[arg-type]


def notice(**changes: object) -> Notice:
    return Notice(
        event_id=41, event="created", at_ms=T0 + 30_500, note=None, order=order(**changes),
        building_name="Tower 1", unit_name="Pump room", device_name="Booster P1",
        url="http://127.0.0.1:8000/#/orders/7", time_zone="Asia/Shanghai",
    )  # fmt: skip


# -- formats and signatures ------------------------------------------------------------------


def test_wecom_sends_markdown_in_chinese_with_local_times() -> None:
    request = WeComChannel("http://127.0.0.1/send?key=k").request(notice(), T0)
    body = orjson.loads(request.body)
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert "[紧急] 新工单: Pump dry run: P1" in content
    assert "Tower 1 / Pump room / Booster P1" in content
    assert "CST" in content  # Asia/Shanghai, not UTC
    assert "(http://127.0.0.1:8000/#/orders/7)" in content


def test_markdown_is_cut_to_the_robot_limit() -> None:
    request = WeComChannel("http://127.0.0.1/x").request(notice(title="长" * 5000), T0)
    assert len(orjson.loads(request.body)["markdown"]["content"].encode()) <= 4000


def test_dingtalk_signs_the_url_as_documented() -> None:
    secret, now = "SECabc", T0
    request = DingTalkChannel("http://127.0.0.1/robot/send?access_token=t", secret, "en").request(
        notice(), now
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
    assert query["access_token"] == ["t"]
    assert query["timestamp"] == [str(now)]
    expected = hmac.new(secret.encode(), f"{now}\n{secret}".encode(), hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(expected).decode()]
    body = orjson.loads(request.body)
    assert body["markdown"]["title"] == "[critical] New work order: Pump dry run: P1"


def test_feishu_signs_the_body_as_documented() -> None:
    secret = "s3cret"
    body = orjson.loads(FeishuChannel("http://127.0.0.1/hook/x", secret).request(notice(), T0).body)
    timestamp = T0 // 1000
    key = f"{timestamp}\n{secret}".encode()
    assert body["timestamp"] == str(timestamp)
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["msg_type"] == "text"
    assert "新工单" in body["content"]["text"]


def test_unsigned_feishu_and_dingtalk_add_nothing() -> None:
    assert "sign" not in orjson.loads(FeishuChannel("http://h/x").request(notice(), T0).body)
    assert DingTalkChannel("http://h/x?access_token=t").request(notice(), T0).url.endswith("=t")


def test_webhook_carries_the_whole_order_and_an_hmac_over_timestamp_and_body() -> None:
    request = WebhookChannel("http://127.0.0.1/hook", "key").request(notice(), T0)
    document = orjson.loads(request.body)
    assert document["work_order"]["id"] == 7
    assert document["event"] == "created"
    assert request.headers["X-Facility-Delivery"] == "41"
    timestamp = request.headers["X-Facility-Timestamp"]
    mac = hmac.new(b"key", timestamp.encode() + b"." + request.body, hashlib.sha256)
    assert request.headers["X-Facility-Signature"] == "sha256=" + mac.hexdigest()
    assert "X-Facility-Signature" not in WebhookChannel("http://h").request(notice(), T0).headers


# -- judging replies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "status", "body", "outcome"),
    [
        (WeComChannel("http://h"), 200, b'{"errcode":0,"errmsg":"ok"}', Outcome.SENT),
        (WeComChannel("http://h"), 200, b'{"errcode":45009,"errmsg":"freq"}', Outcome.RETRY),
        (WeComChannel("http://h"), 200, b'{"errcode":93000,"errmsg":"bad key"}', Outcome.FAILED),
        (DingTalkChannel("http://h"), 200, b'{"errcode":0}', Outcome.SENT),
        (DingTalkChannel("http://h"), 200, b'{"errcode":130101}', Outcome.RETRY),
        (DingTalkChannel("http://h"), 200, b'{"errcode":310000,"errmsg":"sign"}', Outcome.FAILED),
        (FeishuChannel("http://h"), 200, b'{"code":0,"msg":"success"}', Outcome.SENT),
        (FeishuChannel("http://h"), 200, b'{"StatusCode":0}', Outcome.SENT),
        (FeishuChannel("http://h"), 200, b'{"code":9499,"msg":"too many"}', Outcome.RETRY),
        (FeishuChannel("http://h"), 200, b'{"code":19021,"msg":"sign"}', Outcome.FAILED),
        (FeishuChannel("http://h"), 200, b"<html>proxy</html>", Outcome.FAILED),
        (FeishuChannel("http://h"), 200, b"[1]", Outcome.FAILED),
        (FeishuChannel("http://h"), 200, b'{"msg":"no code"}', Outcome.FAILED),
        (WeComChannel("http://h"), 502, b"", Outcome.RETRY),
        (WebhookChannel("http://h"), 204, b"", Outcome.SENT),
        (WebhookChannel("http://h"), 429, b"", Outcome.RETRY),
        (WebhookChannel("http://h"), 503, b"", Outcome.RETRY),
        (WebhookChannel("http://h"), 404, b"", Outcome.FAILED),
    ],
)
def test_replies_are_judged_by_status_then_vendor_code(
    channel: WeComChannel, status: int, body: bytes, outcome: Outcome
) -> None:
    assert channel.verdict(status, body).outcome is outcome


# -- the cursor ------------------------------------------------------------------------------


def test_cursor_floor_waits_at_a_hole_until_the_grace_period_passes() -> None:
    cursor = Cursor()
    for event_id in (1, 2, 4, 5):
        cursor.mark(event_id)
    cursor.advance(now_ms=1_000, grace_ms=500)
    assert cursor.floor == 2
    assert cursor.handled(4)
    assert not cursor.handled(3)
    cursor.advance(now_ms=1_400, grace_ms=500)
    assert cursor.floor == 2  # 3 may still commit
    cursor.advance(now_ms=1_500, grace_ms=500)
    assert cursor.floor == 5
    assert not cursor.done
    cursor.mark(7)
    loaded = Cursor.loads(cursor.floor, cursor.dumps())
    assert (loaded.floor, loaded.done) == (5, {7})


@pytest.mark.parametrize("done", ["", "{not json", "{}", '"x"', '[1, "2"]', "[1.5]"])
def test_an_unreadable_cursor_is_an_error_not_a_silent_restart(done: str) -> None:
    with pytest.raises(CursorError, match="cursor"):
        Cursor.loads(3, done)


def test_one_relay_holds_a_channel_until_it_lets_go_or_its_lease_runs_out(
    store: WorkOrderStore, clock: FakeClock
) -> None:
    first = SharedCursor(store.engine, "wecom", "gw-1", lease_ms=30_000)
    second = SharedCursor(store.engine, "wecom", "gw-2", lease_ms=30_000)
    other_channel = SharedCursor(store.engine, "erp", "gw-2", lease_ms=30_000)
    cursor = first.acquire(clock.now)
    assert cursor is not None
    assert second.acquire(clock.now) is None
    assert other_channel.acquire(clock.now) is not None
    cursor.mark(1)
    cursor.mark(3)
    cursor.advance(clock.now, grace_ms=10_000)
    assert first.renew(clock.now + 20_000, cursor)
    assert second.acquire(clock.now + 40_000) is None  # renewed at +20 s: held until +50 s
    taken = second.acquire(clock.now + 50_001)
    assert taken is not None
    assert (taken.floor, taken.done) == (1, {3})
    assert not first.renew(clock.now + 50_002)  # first stalled: it must stop sending
    second.release()
    assert first.acquire(clock.now + 50_003) is not None  # handed back: no waiting


# -- delivery end to end ---------------------------------------------------------------------


def fault(
    device: str = "p1", started_ms: int = T0, severity: Severity = Severity.CRITICAL
) -> FaultOpened:
    return FaultOpened(
        rule_id="pump.dry_run", kind="pump", device_id=device, building_id="b1", unit_id="u1",
        severity=severity, category=Category.EQUIPMENT, title=f"Pump dry run: {device}",
        started_ms=started_ms, detected_ms=started_ms + 30_000,
    )  # fmt: skip


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + 60_000)


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[WorkOrderStore]:
    engine = make_engine(db_url)
    store = WorkOrderStore(engine, clock_ms=clock)
    store.migrate()
    yield store
    engine.dispose()


def relay(
    store: WorkOrderStore, receiver: HttpReceiver, tmp_path: Path, clock: FakeClock,
    site: Site, **kwargs: object,
) -> Relay:  # fmt: skip
    channel = kwargs.pop("channel", WeComChannel(receiver.url + "/send?key=k"))
    return Relay(
        channel,  # type: ignore[arg-type]
        store.engine,
        str(kwargs.pop("owner", "gateway-1")),
        NoticeMaker(site, "http://127.0.0.1:8000"),
        settings=kwargs.pop("settings", FAST),  # type: ignore[arg-type]
        clock_ms=clock,
        **kwargs,  # type: ignore[arg-type]
    )


def test_each_new_order_is_sent_once_across_restarts(
    store: WorkOrderStore, tmp_path: Path, clock: FakeClock, demo_site: Site
) -> None:
    store.open_for_faults("s", [fault("p1"), fault("p2")])
    with HttpReceiver([OK_WECOM]) as receiver:
        first = relay(store, receiver, tmp_path, clock, demo_site)
        first.pass_once()
        first.stop()
        assert len(receiver.received) == 2
        assert first.counts.sent == 2
        # the same fault again is no new episode; a new order is
        store.open_for_faults("s", [fault("p1"), fault("p3")])
        second = relay(store, receiver, tmp_path, clock, demo_site)
        second.pass_once()
        second.stop()
        bodies = [orjson.loads(r.body)["markdown"]["content"] for r in receiver.received]
    assert len(bodies) == 3
    assert "p3" in bodies[2]
    assert "(http://127.0.0.1:8000/#/orders/1)" in bodies[0]  # the dashboard's order route
    assert all(r.path == "/send?key=k" for r in receiver.received)


def test_busy_and_rate_limited_receivers_are_retried_until_sent(
    store: WorkOrderStore, tmp_path: Path, clock: FakeClock, demo_site: Site
) -> None:
    store.open_for_faults("s", [fault()])
    replies = [
        Reply(503),
        Reply(429, headers={"Retry-After": "0"}),
        Reply(body=b'{"errcode":45009,"errmsg":"api freq out of limit"}'),
        OK_WECOM,
    ]
    with HttpReceiver(replies) as receiver:
        r = relay(store, receiver, tmp_path, clock, demo_site)
        r.pass_once()
        r.stop()
    assert len(receiver.received) == 4
    assert (r.counts.sent, r.counts.retries, r.counts.failed) == (1, 3, 0)
    assert "45009" in r.counts.last_error


def test_an_unreachable_receiver_is_retried_and_nothing_is_lost(
    store: WorkOrderStore, tmp_path: Path, clock: FakeClock, demo_site: Site
) -> None:
    store.open_for_faults("s", [fault()])
    with HttpReceiver([OK_WECOM]) as receiver:
        url = receiver.url
    # the receiver is gone now: connection refused
    r = relay(store, receiver, tmp_path, clock, demo_site, channel=WebhookChannel(url))
    r.start()
    assert wait_until(lambda: r.counts.retries >= 2)
    with HttpReceiver([Reply(204)]) as later:
        r.stop()  # stopped mid-retry: the notice was not marked handled
        assert r.counts.retries >= 1
        assert r.counts.sent == 0
        again = relay(store, later, tmp_path, clock, demo_site, channel=WebhookChannel(later.url))
        again.pass_once()
        again.stop()
        assert len(later.received) == 1
        assert again.counts.sent == 1


def test_a_refused_notice_is_counted_and_the_next_one_still_goes(
    store: WorkOrderStore, tmp_path: Path, clock: FakeClock, demo_site: Site
) -> None:
    store.open_for_faults("s", [fault("p1"), fault("p2")])
    with HttpReceiver(
        [Reply(body=b'{"errcode":93000,"errmsg":"invalid key"}'), OK_WECOM]
    ) as receiver:
        r = relay(store, receiver, tmp_path, clock, demo_site)
        r.pass_once()
        r.stop()
    assert (r.counts.sent, r.counts.failed) == (1, 1)
    assert "invalid key" in r.counts.last_error


def test_filters_and_max_age_decide_what_is_sent(
    store: WorkOrderStore, tmp_path: Path, clock: FakeClock, demo_site: Site
) -> None:
    store.open_for_faults("s", [fault("p1", severity=Severity.WARNING), fault("p2")])
    clock.now += 2 * 3_600_000  # both created events are two hours old now
    store.open_for_faults("s", [fault("p3", started_ms=clock.now)])
    with HttpReceiver([OK_WECOM]) as receiver:
        r = relay(
            store, receiver, tmp_path, clock, demo_site,
            accepts=Filter(frozenset({"created"}), frozenset({"critical"})),
        )  # fmt: skip
        r.pass_once()
        r.stop()
    assert len(receiver.received) == 1
    assert r.counts.stale == 1
    assert "p3" in orjson.loads(receiver.received[0].body)["markdown"]["content"]


def test_overdue_orders_are_escalated_and_the_escalation_is_notified(
    store: WorkOrderStore, tmp_path: Path, clock: FakeClock, demo_site: Site
) -> None:
    store.open_for_faults("s", [fault()])
    with HttpReceiver([OK_WECOM]) as receiver:
        r = relay(store, receiver, tmp_path, clock, demo_site)
        r.pass_once()
        loop = EscalationLoop(store)
        assert loop.run_once() == 0
        clock.now = T0 + 16 * 60_000  # critical: respond within 15 minutes of the fault
        assert loop.run_once() == 1
        assert loop.run_once() == 0
        r.pass_once()
        r.stop()
    contents = [orjson.loads(x.body)["markdown"]["content"] for x in receiver.received]
    assert len(contents) == 2
    assert "工单超时升级" in contents[1]


def test_two_gateways_on_one_database_send_each_notice_once(
    store: WorkOrderStore, tmp_path: Path, clock: FakeClock, demo_site: Site
) -> None:
    with HttpReceiver([OK_WECOM]) as receiver:
        one = relay(store, receiver, tmp_path, clock, demo_site, owner="gateway-1")
        two = relay(store, receiver, tmp_path, clock, demo_site, owner="gateway-2")
        store.open_for_faults("s", [fault("p1"), fault("p2")])
        one.pass_once()
        two.pass_once()
        store.open_for_faults("s", [fault("p3")])
        two.pass_once()
        one.pass_once()
        assert len(receiver.received) == 3
        assert (one.counts.sent, two.counts.sent) == (3, 0)

        # gateway-1 hangs (no renewals) past the lease: gateway-2 takes over where it was.
        store.open_for_faults("s", [fault("p4")])
        clock.now += int(FAST.lease_s * 1000) + 1
        two.pass_once()
        assert two.counts.sent == 1
        assert "p4" in orjson.loads(receiver.received[-1].body)["markdown"]["content"]
        one.pass_once()  # it wakes up: the channel is not its any more, it sends nothing
        assert one.counts.sent == 3
        assert one.cursor is None
        one.stop()
        two.stop()
    assert len(receiver.received) == 4


def test_notifications_service_runs_one_relay_per_channel(
    store: WorkOrderStore, tmp_path: Path, clock: FakeClock, demo_site: Site
) -> None:
    with HttpReceiver([OK_WECOM]) as wecom, HttpReceiver([Reply(200)]) as hook:
        settings = parse_alert_settings(
            f'[[notifications]]\ntype = "wecom"\nurl = "{wecom.url}/send?key=k"\n'
            f'[[notifications]]\ntype = "webhook"\nname = "erp"\nurl_env = "HOOK"\n',
            env={"HOOK": hook.url + "/in"},
        )
        service = Notifications(
            settings, demo_site, store.engine, clock_ms=clock, relay_settings=FAST
        )
        service.start()
        store.open_for_faults("s", [fault()])
        assert len(wecom.wait_for(1)) == 1
        assert len(hook.wait_for(1)) == 1
        service.stop()
    text = "".join(f"{m.name}{dict(m.samples)}" for m in service.prometheus() if "sent" in m.name)
    assert "('channel', 'wecom')" in text
    assert "('channel', 'erp')" in text
    with store.engine.connect() as conn:
        rows = conn.execute(select(notification_cursors.c.channel, notification_cursors.c.owner))
        assert sorted(rows.all()) == [("erp", None), ("wecom", None)]  # handed back at stop


# -- settings --------------------------------------------------------------------------------


def test_settings_file_builds_policy_escalation_and_channels() -> None:
    settings = parse_alert_settings(
        """
public_url = "https://fm.example.com"
[work_orders]
severities.critical = { respond_s = 600 }
[escalation]
interval_s = 10
[[notifications]]
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=x"
secret_env = "DT"
severities = ["critical"]
""",
        env={"DT": "SEC1"},
    )
    assert settings.policy.for_severity("critical").respond_s == 600
    assert settings.escalation_interval_s == 10
    assert settings.public_url == "https://fm.example.com"
    (channel,) = settings.channels
    assert isinstance(channel.channel, DingTalkChannel)
    assert channel.channel.secret == "SEC1"
    assert channel.accepts.severities == {"critical"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("bogus = 1", None, "unknown setting"),
        ('public_url = "ftp://x"', 1, "http"),
        ("[work_orders]\nroot_cause_after = 1", None, "root_cause_after"),
        ("[escalation]\ninterval_s = 0", None, "interval_s"),
        ("[escalation]\nevery = 3", None, "interval_s"),
        ("notifications = 3", None, "array of tables"),
        ('\n[[notifications]]\ntype = "sms"\nurl = "http://h"', 3, "type must be one of"),
        ('[[notifications]]\ntype = "wecom"', 1, "needs url"),
        ('[[notifications]]\ntype = "wecom"\nurl = "not a url"', 3, "needs url"),
        ('[[notifications]]\ntype = "wecom"\nurl = "http://h"\nsecret = "s"', 4, "no signing"),
        ('[[notifications]]\ntype = "feishu"\nurl_env = "NOPE"', 3, "NOPE"),
        ('[[notifications]]\ntype = "webhook"\nurl = "http://h"\nurl_env = "X"', 3, "not both"),
        ('[[notifications]]\ntype = "wecom"\nurl = "http://h"\nlanguage = "fr"', 4, "language"),
        ('[[notifications]]\ntype = "wecom"\nurl = "http://h"\nevents = ["deleted"]', 4, "deleted"),
        ('[[notifications]]\ntype = "wecom"\nurl = "http://h"\nseverities = "critical"', 4, "list"),
        ('[[notifications]]\ntype = "wecom"\nurl = "http://h"\nmax_age_s = -1', 4, "max_age_s"),
        ('[[notifications]]\ntype = "wecom"\nurl = "http://h"\nname = "a b"', 4, "name"),
        ('[[notifications]]\ntype = "wecom"\nurl = "http://h"\ncolour = 1', 4, "colour"),
        (
            '[[notifications]]\ntype = "wecom"\nurl = "http://h"\n'
            '[[notifications]]\ntype = "wecom"\nurl = "http://i"',
            None,
            "unique",
        ),
        ("[[notifications]\n", 1, "not valid TOML"),
    ],
)
def test_bad_settings_name_file_line_and_problem(text: str, line: int | None, message: str) -> None:
    with pytest.raises(NotifySettingsError, match=message) as caught:
        parse_alert_settings(text, "alerts.toml", env={"X": "http://x"})
    assert caught.value.line == line
    assert str(caught.value).startswith("alerts.toml")
