"""Bad contact data cannot jam deliveries or reach third parties: one address per e-mail field, strict webhook
URLs, and no connection to the platform's own network unless configuration allows it."""

from __future__ import annotations

import ipaddress
import random
import ssl
import stat
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from services.notifier.app import NotifierSettings
from services.notifier.channels import (
    EmailChannel, GuardedTransport, SendFailed, SmtpServer, WebhookChannel, standard_webhook_headers,
)
from services.notifier.domain import (
    LOOPBACK, Channel, Delivery, DeliveryStatus, InvalidWebhook, Level, OutboundPolicy, Recipient, RetryPolicy,
    WebhookSecrets, issue_webhook_secret, signing_secrets, webhook_url,
)
from services.notifier.sealing import SecretSeal, SecretUnreadable
from services.permits.api import Contact
from shared.contract import single_email
from shared.settings import PlatformSettings
from tooling.ports import free_port


@pytest.mark.parametrize("address", [
    "k3@baja.example\r\nBcc: spy@evil.example",  # a second header
    "k3@baja.example\n",
    "k3@baja.example, spy@evil.example",  # a list
    "k3@baja.example,spy@evil.example",
    "PT Baja <k3@baja.example>",  # a display name
    "k3(comment)@baja.example",
    '"k3"@baja.example',
    "k3@[10.0.0.1]",  # a domain literal
    "k3@baja",
    "k3@baja..example",
    "k3\x00@baja.example",
    "kés@baja.example",  # SMTPUTF8 is not assumed
    "a" * 65 + "@baja.example",
    "k3@" + "a" * 320 + ".example",
    "",
])
def test_an_email_field_holds_exactly_one_plain_address(address: str):
    with pytest.raises(ValueError):
        single_email(address)


def test_an_address_in_an_internationalised_domain_is_kept_in_ascii():
    assert single_email("k3@baja.example") == "k3@baja.example"
    assert single_email("k3.hse+alerts@pabrik-baja.co.id") == "k3.hse+alerts@pabrik-baja.co.id"
    assert single_email("k3@bäja.example") == "k3@xn--bja-qla.example"


def test_a_company_contact_with_a_second_header_or_a_list_is_refused_by_the_permits_api():
    for email in ("k3@baja.example\r\nBcc: spy@evil.example", "k3@baja.example, spy@evil.example"):
        with pytest.raises(ValidationError):
            Contact(email=email)
    with pytest.raises(ValidationError):
        Contact(phone="+62211234567\r\nX: y")
    assert Contact(email="k3@baja.example", phone="+62 21 123-4567").email == "k3@baja.example"


@pytest.mark.parametrize("url", [
    "https://user:pass@hooks.example/x",  # credentials
    "https://hooks.example@evil.example/x",
    "https://hooks.example/x#frag",
    "https://hooks.example/x\n",
    "https://hooks.example/a b",
    "https:\\\\hooks.example/x",
    "https:///x",
    "https://hooks.example:99999/x",
    "ftp://hooks.example/x",
    "https://" + "a" * 2000 + ".example/",
    "https://hooks..example/",
])
def test_a_webhook_url_is_parsed_strictly(url: str):
    with pytest.raises(InvalidWebhook):
        webhook_url(url, allow_http=True)


def test_plain_http_webhooks_are_for_development_only():
    assert webhook_url("https://hooks.bekasi.example/satgas", allow_http=False)
    assert webhook_url("http://127.0.0.1:8080/hook", allow_http=True)
    with pytest.raises(InvalidWebhook, match="a webhook target must be an https URL"):
        webhook_url("http://hooks.bekasi.example/satgas", allow_http=False)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "fd12::1", "169.254.169.254", "fd00:ec2::254",
    "fe80::1", "0.0.0.0", "::",  # noqa: S104 -- refused, not bound
    "224.0.0.1", "ff02::1", "240.0.0.1", "100.64.0.1",
    # IPv4 addresses inside IPv6 ones, which a translator delivers to the IPv4 address: mapped, NAT64, 6to4.
    "::ffff:10.0.0.1", "64:ff9b::a00:1", "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:a00:1::1",
    "2002:7f00:1::", "64:ff9b:1::808:808",  # a site's own NAT64 prefix: refused whatever it embeds
])
def test_the_platforms_own_networks_are_refused_by_default(address: str):
    assert not OutboundPolicy().permits(ipaddress.ip_address(address))


def test_public_addresses_are_reachable_and_configuration_opens_only_what_it_lists():
    assert OutboundPolicy().permits(ipaddress.ip_address("8.8.8.8"))
    assert OutboundPolicy().permits(ipaddress.ip_address("2001:4860:4860::8888"))
    assert OutboundPolicy().permits(ipaddress.ip_address("64:ff9b::8.8.8.8"))  # a public address through NAT64
    assert OutboundPolicy().permits(ipaddress.ip_address("2002:808:808::1"))  # and through 6to4
    development = OutboundPolicy(LOOPBACK)
    assert development.permits(ipaddress.ip_address("127.0.0.1")) and development.permits(ipaddress.ip_address("::1"))
    assert not development.permits(ipaddress.ip_address("10.0.0.1"))
    # Allowing a private network does not open the cloud metadata endpoint inside it; listing it itself does.
    wide = OutboundPolicy.parse("169.254.0.0/16, fd00::/8")
    assert wide.permits(ipaddress.ip_address("169.254.1.1"))
    assert not wide.permits(ipaddress.ip_address("169.254.169.254"))
    assert not wide.permits(ipaddress.ip_address("fd00:ec2::254"))
    assert OutboundPolicy.parse("169.254.169.254/32").permits(ipaddress.ip_address("169.254.169.254"))


def test_development_is_where_tokens_are_signed_with_a_shared_secret_unless_configured():
    development = PlatformSettings(jwt_secret="x" * 32)
    production = PlatformSettings(jwt_secret=None, oidc_issuer="https://sso.example.go.id/realms/iomki",
                                  oidc_audience="iomki")
    assert NotifierSettings().development(development) and not NotifierSettings().development(production)
    assert not NotifierSettings(IOMKI_ENVIRONMENT="production").development(development)
    assert NotifierSettings().config(development).allow_http_webhooks
    assert not NotifierSettings().config(production).allow_http_webhooks
    assert NotifierSettings().outbound(development) == OutboundPolicy(LOOPBACK)
    assert NotifierSettings().outbound(production) == OutboundPolicy()
    assert NotifierSettings(IOMKI_OUTBOUND_ALLOW="").outbound(development) == OutboundPolicy()
    with pytest.raises(ValidationError):
        NotifierSettings(IOMKI_OUTBOUND_ALLOW="10.0.0.0/33")


async def _send(url: str, policy: OutboundPolicy, *, allow_http: bool = True) -> SendFailed:
    async with httpx.AsyncClient(transport=GuardedTransport(ssl.create_default_context(), policy), timeout=5,
                                 trust_env=False) as client:
        with pytest.raises(SendFailed) as failed:
            await WebhookChannel(client, allow_http=allow_http).send(
                delivery_id=uuid.uuid4(), target=url, secrets=(issue_webhook_secret(),), at=datetime.now(UTC),
                subject="s", body=b"{}")
    return failed.value


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook",
                                 "http://[fd00:ec2::254]/", "http://[::ffff:127.0.0.1]:9/hook",
                                 "http://localhost:9/hook"])
async def test_a_webhook_to_the_platforms_own_network_is_refused_before_connecting(url: str):
    failed = await _send(url, OutboundPolicy())
    assert (failed.reason, failed.permanent) == ("address not allowed", False)
    assert "169.254" not in failed.reason and "10.0" not in failed.reason


async def test_a_failure_is_told_as_a_category_and_its_detail_kept_for_the_log():
    closed = await _send(f"http://127.0.0.1:{free_port()}/hook", OutboundPolicy(LOOPBACK))
    assert closed.reason == "connection refused" and "ConnectError" in closed.detail
    insecure = await _send("http://127.0.0.1:9/hook", OutboundPolicy(LOOPBACK), allow_http=False)
    assert (insecure.reason, insecure.permanent) == ("invalid address", True)


async def test_an_email_channel_rechecks_a_stored_address_before_it_opens_a_connection():
    channel = EmailChannel(SmtpServer("127.0.0.1", free_port(), "iomki@example.go.id", False, 1.0))
    with pytest.raises(SendFailed) as failed:
        await channel.send(delivery_id=uuid.uuid4(), target="k3@baja.example\r\nBcc: spy@evil.example", secrets=(),
                           at=datetime.now(UTC), subject="s", body=b"b")
    assert (failed.value.reason, failed.value.permanent) == ("invalid address", True)
    assert "spy" not in failed.value.detail


def test_an_address_that_can_never_work_fails_at_once_instead_of_retrying():
    now, rng = datetime(2026, 11, 20, tzinfo=UTC), random.Random(1)  # noqa: S311 -- jitter, no secret
    delivery = Delivery.planned(uuid.uuid4(), Recipient(Channel.EMAIL, "x", Level.REGENCY, uuid.uuid4()), now)
    failed = delivery.failed_attempt("invalid address", now, RetryPolicy(), rng, permanent=True)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == (DeliveryStatus.FAILED, 1, None)
    retried = delivery.failed_attempt("address not allowed", now, RetryPolicy(), rng)
    assert retried.status is DeliveryStatus.PENDING and retried.next_attempt_at is not None


# -- Standard Webhooks --------------------------------------------------------------------------


BODY = b'{"alert_id":"a","event_type":"ClusterDeclared"}'


def test_a_notice_verifies_with_the_standard_webhooks_library_and_its_id_is_the_delivery():
    secret, delivery_id, now = issue_webhook_secret(), uuid.uuid4(), datetime.now(UTC)
    headers = standard_webhook_headers(delivery_id, now, (secret,), BODY)
    assert headers["webhook-id"] == str(delivery_id)
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert Webhook(secret).verify(BODY, headers) == {"alert_id": "a", "event_type": "ClusterDeclared"}
    assert headers["webhook-signature"] == Webhook(secret).sign(str(delivery_id), now, BODY)


def test_a_replayed_or_tampered_notice_is_refused_by_the_library():
    secret, delivery_id = issue_webhook_secret(), uuid.uuid4()
    replayed = standard_webhook_headers(delivery_id, datetime.now(UTC) - timedelta(minutes=6), (secret,), BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, replayed)
    fresh = standard_webhook_headers(delivery_id, datetime.now(UTC), (secret,), BODY)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(BODY.replace(b"ClusterDeclared", b"WarningIssued"), fresh)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(BODY, fresh | {"webhook-id": str(uuid.uuid4())})  # a signature moved to another id
    with pytest.raises(WebhookVerificationError):
        Webhook(issue_webhook_secret()).verify(BODY, fresh)


def test_a_receiver_holding_only_the_old_secret_verifies_during_the_grace_period_and_not_after():
    old, new = issue_webhook_secret(), issue_webhook_secret()
    rotated_at, grace = datetime.now(UTC) - timedelta(hours=23), timedelta(hours=24)
    held = WebhookSecrets(old).rotated(new, rotated_at)

    def sent_at(now: datetime) -> dict[str, str]:
        # The library checks the timestamp against its own clock: sign "now", choose the secrets as at `now`.
        return standard_webhook_headers(uuid.uuid4(), datetime.now(UTC), signing_secrets(held, now, grace), BODY)

    during = sent_at(rotated_at + timedelta(hours=23))
    assert len(during["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(BODY, during) and Webhook(new).verify(BODY, during)
    after = sent_at(rotated_at + grace)
    assert len(after["webhook-signature"].split(" ")) == 1 and Webhook(new).verify(BODY, after)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(old).verify(BODY, after)


def test_a_secret_from_before_standard_webhooks_verifies_as_its_bytes():
    legacy = "bekasi-webhook-secret-0123456789"  # noqa: S105 -- as stored before migration 0005
    headers = standard_webhook_headers(uuid.uuid4(), datetime.now(UTC), (legacy,), BODY)
    assert Webhook(legacy.encode()).verify(BODY, headers)


async def test_a_webhook_is_never_sent_unsigned():
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="no secret"):
            await WebhookChannel(client, allow_http=True).send(
                delivery_id=uuid.uuid4(), target="http://127.0.0.1:9/hook", secrets=(), at=datetime.now(UTC),
                subject="s", body=BODY)


# -- secrets at rest ----------------------------------------------------------------------------


def test_a_sealed_secret_opens_with_any_configured_key_and_the_first_seals():
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    held = WebhookSecrets(issue_webhook_secret()).rotated(issue_webhook_secret(), datetime.now(UTC))
    sealed = SecretSeal([old_key]).seal(held)
    assert held.current.encode() not in sealed.current and held.previous.encode() not in sealed.previous
    assert SecretSeal([old_key]).resealed(sealed) is None  # already under the first key
    rotated_key = SecretSeal([new_key, old_key])
    assert rotated_key.open(sealed) == held
    resealed = rotated_key.resealed(sealed)
    assert resealed is not None and rotated_key.resealed(resealed) is None
    assert SecretSeal([new_key]).open(resealed) == held  # the old key may go now
    with pytest.raises(SecretUnreadable):
        SecretSeal([new_key]).open(sealed)  # had it gone before its secrets were sealed again


def test_production_refuses_to_start_without_keys_and_development_keeps_one(tmp_path):
    production = PlatformSettings(jwt_secret=None, oidc_issuer="https://sso.example.go.id/realms/iomki",
                                  oidc_audience="iomki")
    with pytest.raises(ValueError, match="set IOMKI_WEBHOOK_SECRET_KEYS"):
        NotifierSettings().secret_seal(production)
    key = Fernet.generate_key().decode()
    configured = NotifierSettings(IOMKI_WEBHOOK_SECRET_KEYS=f" {key} ,{Fernet.generate_key().decode()}")
    assert SecretSeal([key]).open(configured.secret_seal(production).seal(WebhookSecrets("whsec_x")))
    with pytest.raises(ValidationError, match="comma-separated Fernet keys"):
        NotifierSettings(IOMKI_WEBHOOK_SECRET_KEYS="not-a-key")  # noqa: S106 -- a malformed key

    development = PlatformSettings(jwt_secret="x" * 32, data_dir=tmp_path)
    sealed = NotifierSettings().secret_seal(development).seal(WebhookSecrets("whsec_x"))
    assert NotifierSettings().secret_seal(development).open(sealed) == WebhookSecrets("whsec_x")  # kept, not redrawn
    kept = tmp_path / "notifier-webhook-secret-key"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_the_grace_period_is_an_iso_8601_duration_defaulting_to_a_day():
    assert NotifierSettings().config(PlatformSettings(jwt_secret="x" * 32)).secret_grace == timedelta(hours=24)
    assert NotifierSettings(**{"IOMKI_WEBHOOK_SECRET_GRACE": "PT2H"}).webhook_secret_grace == timedelta(hours=2)
    with pytest.raises(ValidationError):
        NotifierSettings(**{"IOMKI_WEBHOOK_SECRET_GRACE": "-PT1H"})
