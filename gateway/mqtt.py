"""The one MQTT client of Floorwatch, over paho-mqtt 2 (callback API version 2).

No other module imports paho. What this wrapper adds to paho:

- MQTT v5 by default, 3.1.1 when the broker speaks nothing newer (the embedded amqtt broker);
- a persistent session on request (v5: clean start off plus a session expiry; 3.1.1: clean session
  off), so that what edges publish while the server is down is delivered when it comes back;
- subscriptions remembered and renewed on every (re)connect, with capped exponential backoff, and
  `subscribed` only once the broker's SUBACK granted every one of them on the current connection;
- `create_session`: a persistent session made ahead of its consumer, so the broker queues for it from then on;
- a Last Will, TLS and username/password from one settings object;
- optional manual acknowledgement, so a consumer acks a QoS 1 message only once it has stored what
  the message caused (a crash before that means the broker delivers it again);
- a message the broker refused (MQTT 5 PUBACK with a failure code, e.g. 0x87 "Not authorized" from an
  ACL) is reported apart from the ones it took (`on_refused`), so a durable buffer keeps it;
- a broker it cannot reach, or one that refuses its credentials, is logged with what to check;
- callbacks run on paho's network thread: handlers must only hand messages off, never block on I/O.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway import contract

log = logging.getLogger(__name__)


class _NoPostDisconnectNoise(logging.Filter):
    """paho 2 runs its network loop once more after it has sent DISCONNECT and closed the socket, and logs
    that pass as an ERROR ("Client is not connected"): every clean stop printed one, which means nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected.")


log.addFilter(_NoPostDisconnectNoise())

DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600
"""How long the broker keeps a persistent session (and queues for it) while its client is away."""


class SessionError(ConnectionError):
    """A persistent session could not be made: the broker was unreachable or refused a subscription."""


class MqttSettings(BaseModel):
    """Where and how to connect. Environment variables FLOORWATCH_MQTT__* map onto these fields."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: int = Field(30, ge=5, le=3600)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    reconnect_min_s: int = Field(1, ge=1)
    reconnect_max_s: int = Field(30, ge=1)
    max_inflight: int = Field(100, ge=1, le=65535)
    """QoS 1 messages this client may have unacknowledged at once (paho's default is 20)."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One received message. With manual acks, pass it to `MqttClient.ack` once it is safe."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    mid: int


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


MessageHandler = Callable[[Incoming], None]
ConnectionHandler = Callable[[bool], None]
PublishedHandler = Callable[[int], None]
RefusedHandler = Callable[[int, str], None]

REPEAT_LOG_S = 60.0
"""The same connection or publish problem is logged at most once a minute (the first time at once)."""
SHORT_LIVED_S = 5.0
"""A connection the broker closes this soon after it was made, three times in a row, is being taken over."""
SESSION_TAKEN_OVER = 142


class MqttClient:
    """A long-lived connection that reconnects by itself.

    `start()` returns at once; use `wait_connected()` where the caller must know. `publish()` while
    disconnected queues QoS 1 messages in paho's memory; callers that must survive a process restart
    keep their own durable buffer and drop an entry only when `on_published` reports its mid.
    """

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        *,
        on_message: MessageHandler | None = None,
        on_connection: ConnectionHandler | None = None,
        on_published: PublishedHandler | None = None,
        on_refused: RefusedHandler | None = None,
        will: Will | None = None,
        persistent_session: bool = False,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
        manual_ack: bool = False,
        credentials_from: str = "",
    ) -> None:
        """`on_published(mid)`: the broker acknowledged a QoS 1 message; without `on_refused`, also one it
        refused. `on_refused(mid, reason)`: the broker acknowledged it with a failure code and dropped it.
        `credentials_from`: where the user name and password are set, named when the broker refuses them."""
        self.settings = settings
        self.client_id = client_id
        self._on_message = on_message
        self._on_connection = on_connection
        self._on_published = on_published
        self._on_refused = on_refused
        self._credentials_from = credentials_from
        self._last_logged: dict[str, float] = {}
        self._failed_attempts = 0
        self._connected_at = 0.0
        self._short_lived = 0
        self.refused_publishes = 0
        """Messages the broker acknowledged with a failure code (an ACL refusal) since the start."""
        self._persistent = persistent_session
        self._session_expiry_s = session_expiry_s
        self._subscriptions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._pending_subacks: set[int] = set()
        self.subscribe_refused: str | None = None
        """Why the broker refused a subscription on the current connection (e.g. an ACL), else None."""
        self.session_present = False
        """The broker's CONNACK flag: it already held this client's session."""
        self._stopping = False
        self.connects = 0
        """How many times a connection was established; >1 means it reconnected."""

        v5 = settings.protocol == "5"
        self._v5 = v5
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else not persistent_session,
            manual_ack=manual_ack,
            reconnect_on_failure=True,
        )
        self._client.enable_logger(log)
        self._client.reconnect_delay_set(min_delay=settings.reconnect_min_s, max_delay=settings.reconnect_max_s)
        self._client.max_inflight_messages_set(settings.max_inflight)
        self._client.max_queued_messages_set(0)  # unbounded: callers bound their own buffers
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else None
            self._client.username_pw_set(settings.username, password)
        if settings.tls:
            self._client.tls_set(
                ca_certs=settings.ca_file,
                certfile=settings.cert_file,
                keyfile=settings.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:
            self._client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        self._client.on_connect = self._handle_connect
        self._client.on_connect_fail = self._handle_connect_fail
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message
        self._client.on_publish = self._handle_publish
        self._client.on_subscribe = self._handle_subscribe

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho's thread keeps reconnecting until `stop()`."""
        properties = None
        clean_start: bool | Literal[3] = paho.MQTT_CLEAN_START_FIRST_ONLY
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if self._persistent:
                properties.SessionExpiryInterval = self._session_expiry_s
                clean_start = False
            else:
                clean_start = True
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=clean_start,
            properties=properties,
        )
        self._client.loop_start()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        """Wait until the broker granted every subscription (SUBACK): from then on it routes to this session."""
        return self._subscribed.wait(timeout)

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    def stop(self, final: tuple[str, bytes, int, bool] | None = None) -> None:
        """Disconnect cleanly (no Last Will), after publishing `final` (topic, payload, qos, retain) if given."""
        self._stopping = True
        if final is not None and self.connected:
            info = self._client.publish(*final)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                log.warning("final message on %s not confirmed before disconnect", final[0])
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    def kill(self) -> None:
        """Drop the connection without DISCONNECT, as a crash would (the broker then sends the Will)."""
        self._stopping = True
        self._client.loop_stop()
        sock = self._client.socket()
        if sock is not None:
            sock.close()
        self._connected.clear()

    # -- messaging ---------------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe now if connected, and again on every reconnect."""
        with self._lock:
            self._subscriptions[topic_filter] = qos
            if self.connected:
                self._subscribed.clear()
                _, mid = self._client.subscribe(topic_filter, qos)
                if mid is not None:
                    self._pending_subacks.add(mid)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Queue a message for sending; returns its mid (see `on_published`)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.mid

    def publish_payload(self, topic: str, payload: contract._Payload) -> int:
        """Encode a contract payload and publish it with the QoS and retain flag its channel demands."""
        route = contract.parse_topic(topic)
        delivery = contract.DELIVERY[route.channel]
        if not isinstance(payload, delivery.model):
            raise contract.ContractError(
                f"{type(payload).__name__} is not the payload of {route.channel.value} ({delivery.model.__name__})"
            )
        return self.publish(topic, contract.encode(payload), delivery.qos, delivery.retain)

    def ack(self, message: Incoming) -> None:
        """Acknowledge a QoS 1 message received with manual acks."""
        if message.qos > 0:
            self._client.ack(message.mid, message.qos)

    # -- paho callbacks (network thread: hand off only) --------------------------------------------

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT %s refused by %s:%s: %s%s", self.client_id, self.settings.host, self.settings.port,
                        reason, self._refusal_hint(reason))
            return
        self._failed_attempts = 0
        self._last_logged.pop("unreachable", None)
        # Renew every subscription: with a resumed session the broker keeps them anyway, and a
        # duplicate SUBSCRIBE is harmless; with a lost session (expiry, broker wiped) it is needed.
        with self._lock:
            self._subscribed.clear()
            self._pending_subacks.clear()
            self.subscribe_refused = None
            for topic_filter, qos in self._subscriptions.items():
                _, mid = client.subscribe(topic_filter, qos)
                if mid is not None:
                    self._pending_subacks.add(mid)
        self.session_present = bool(flags.session_present)
        self._connected_at = time.monotonic()
        self.connects += 1
        self._connected.set()
        log.info(
            "MQTT %s connected to %s:%s (session present: %s)",
            self.client_id, self.settings.host, self.settings.port, flags.session_present,
        )
        if self._on_connection is not None:
            self._on_connection(True)

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        if not self._stopping and was_connected:  # a refused CONNECT was logged as such already
            log.warning("MQTT %s lost its connection (%s); reconnecting", self.client_id, reason)
            self._short_lived = self._short_lived + 1 if time.monotonic() - self._connected_at < SHORT_LIVED_S else 0
            if (reason.value == SESSION_TAKEN_OVER or self._short_lived >= 3) and self._due("taken over"):
                log.error("MQTT %s: the broker at %s:%s keeps closing this connection right after it is made: "
                          "another client most likely connects with the same client id (a second edge agent "
                          "with the same `edge:`, or a second server with the same FLOORWATCH_MQTT_CLIENT_ID); "
                          "stop the other one or give each its own id", self.client_id, self.settings.host,
                          self.settings.port)
        if was_connected and self._on_connection is not None:
            self._on_connection(False)

    def _handle_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        if self._on_message is None:
            return
        self._on_message(Incoming(msg.topic, bytes(msg.payload), msg.qos, msg.retain, bool(msg.dup), msg.mid))

    def _handle_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        with self._lock:
            self._pending_subacks.discard(mid)
            if refused:
                self.subscribe_refused = ", ".join(refused)
                log.error("MQTT %s: the broker refused a subscription (%s); check the ACL of this user",
                          self.client_id, self.subscribe_refused)
            elif not self._pending_subacks and self.subscribe_refused is None and self._subscriptions:
                self._subscribed.set()

    def _handle_publish(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        if reason.is_failure:
            self.refused_publishes += 1
            if self._due("refused"):
                log.error("MQTT %s: the broker at %s:%s refused a message (%s; %d so far)%s; check that user %r may "
                          "publish there (broker ACL)", self.client_id, self.settings.host, self.settings.port,
                          reason, self.refused_publishes,
                          "" if self._on_refused is None else ", it is kept for a retry",
                          self.settings.username)
            if self._on_refused is not None:
                self._on_refused(mid, str(reason))
                return
        if self._on_published is not None:
            self._on_published(mid)

    def _handle_connect_fail(self, client: paho.Client, userdata: object) -> None:
        """No CONNACK at all: nothing listens at host:port, a firewall, a name that does not resolve, TLS."""
        self._failed_attempts += 1
        if self._due("unreachable"):
            log.warning("MQTT %s cannot reach %s:%s (%d attempt(s) so far); retrying: check that the broker runs "
                        "and that host, port and tls are right", self.client_id, self.settings.host,
                        self.settings.port, self._failed_attempts)

    def _refusal_hint(self, reason: ReasonCode) -> str:
        # MQTT 5: 134 bad user name or password, 135 not authorized; 3.1.1 CONNACK: 4 and 5.
        if reason.value not in (4, 5, 134, 135):
            return ""
        source = f" ({self._credentials_from})" if self._credentials_from else ""
        user = "no user name" if self.settings.username is None else f"user {self.settings.username!r}"
        return (f": check the user name and password{source}; it connects with {user}. With the broker from "
                "`floorwatch broker files`, each is on that user's line of credentials.txt")

    def _due(self, key: str) -> bool:
        """Whether a repeated problem should be logged now (the first time, then once per REPEAT_LOG_S)."""
        now = time.monotonic()
        last = self._last_logged.get(key)
        if last is not None and now - last < REPEAT_LOG_S:
            return False
        self._last_logged[key] = now
        return True


def create_session(
    settings: MqttSettings,
    client_id: str,
    topic_filters: list[str],
    *,
    qos: int = 1,
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
    timeout: float = 15.0,
    credentials_from: str = "",
) -> bool:
    """Make `client_id`'s persistent session with its subscriptions, then leave: the broker queues QoS 1
    messages for it from the SUBACK on, although its consumer has not started yet. Returns whether the
    session existed already. Messages the broker hands over meanwhile are never acknowledged, so they
    stay queued for the real consumer. Raises SessionError when the broker cannot be reached in time or
    refuses a subscription."""
    client = MqttClient(settings, client_id, persistent_session=True, session_expiry_s=session_expiry_s,
                        manual_ack=True, credentials_from=credentials_from)
    for topic_filter in topic_filters:
        client.subscribe(topic_filter, qos)
    client.start()
    try:
        deadline = time.monotonic() + timeout
        while not client.wait_subscribed(0.1) and client.subscribe_refused is None and time.monotonic() < deadline:
            pass
        if not client.subscribed:
            if client.subscribe_refused is not None:
                raise SessionError(f"the broker at {settings.host}:{settings.port} refused a subscription of "
                                   f"{client_id} ({client.subscribe_refused}); check that user's ACL")
            raise SessionError(f"no SUBACK from the broker at {settings.host}:{settings.port} within {timeout:g} s "
                               f"({'connected' if client.connected else 'not connected'}); check host, port and "
                               "credentials")
        return client.session_present
    finally:
        client.stop()


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching (+ one level, # the rest)."""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(f_parts):
        if part == "#":
            return True
        if index >= len(t_parts) or (part != "+" and part != t_parts[index]):
            return False
    return len(f_parts) == len(t_parts)
