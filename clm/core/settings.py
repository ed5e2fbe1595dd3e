"""Settings read from the environment (CLM_*), with defaults that work with zero set-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///./clm.db"


@dataclass(frozen=True)
class Settings:
    database_url: str
    # Region assumed for phone numbers written without a country code (ISO 3166 alpha-2).
    default_phone_region: str
    # Where people reach this server from outside: survey links (and later tracking links) start with it.
    public_url: str
    # The business's name, as message templates show it.
    shop_name: str
    # Time zone of customers whose profile has none (quiet hours, "wait until 09:00").
    default_timezone: str
    # Marketing messages per customer and channel: "3/7d" (at most 3 in any 7 days), or per
    # channel "email=3/7d,sms=1/7d"; transactional messages do not count and are not capped.
    frequency_cap: str
    # No marketing message is delivered in these local hours; it waits until they end.
    quiet_hours: str
    # Outbound email: an SMTP server (STARTTLS when asked, login when a user is given).
    smtp_host: str
    smtp_port: int
    smtp_starttls: bool
    smtp_user: str | None
    smtp_password: str | None
    mail_from: str
    # SMS and webhooks: HTTP endpoints of the provider (JSON POST), with an optional bearer token.
    sms_url: str | None
    sms_token: str | None
    # Which SMS transport the sms channel uses: http (the endpoint above), aliyun or tencent.
    sms_provider: str
    # Alibaba Cloud SMS (SendSms): AccessKey pair, approved signature name, endpoint.
    aliyun_access_key_id: str | None
    aliyun_access_key_secret: str | None
    aliyun_sms_sign_name: str | None
    aliyun_sms_endpoint: str
    # Tencent Cloud SMS (SendSms 2021-01-11): API key pair, SmsSdkAppId, signature, endpoint, region.
    tencent_secret_id: str | None
    tencent_secret_key: str | None
    tencent_sms_app_id: str | None
    tencent_sms_sign_name: str | None
    tencent_sms_endpoint: str
    tencent_sms_region: str
    # WeChat Official Account: app id and secret (template messages), and the API's base URL.
    wechat_app_id: str | None
    wechat_app_secret: str | None
    wechat_api_url: str
    # The Token of the account's server URL (服务器配置): WeChat signs its pushes with it.
    wechat_token: str | None
    # WeCom (企业微信): corp id, customer-contact secret, API base URL, and the staff member (userid)
    # who sends when neither the step nor the customer names one.
    wecom_corp_id: str | None
    wecom_secret: str | None
    wecom_api_url: str
    wecom_sender: str | None
    # The shared secret Alibaba/Tencent Cloud SMS delivery receipts carry (?token=…); unset: refused.
    sms_receipt_token: str | None
    webhook_url: str | None
    # ISO 4217 code of the store's currency: how the console writes money (¥1,299.00).
    currency: str
    # Sending: a message is attempted at most this many times, then failed for good (a person
    # may retry it); a rendered message (subject, text and HTML together) is at most this big.
    send_attempts: int
    template_max_bytes: int
    # Order statuses as other systems write them, read by `clm import orders` besides the
    # built-in Chinese ones: "已发货=completed,退货完成=refunded".
    order_statuses: str
    # CSV files that leave CLM (downloads, CLI exports): utf-8-sig (UTF-8 with a byte-order mark,
    # what Excel opens with Chinese intact), gb18030 or utf-8; a request may ask for another.
    export_encoding: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("CLM_DATABASE_URL", DEFAULT_DATABASE_URL),
            default_phone_region=os.environ.get("CLM_DEFAULT_PHONE_REGION", "CN").upper(),
            public_url=os.environ.get("CLM_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            shop_name=os.environ.get("CLM_SHOP_NAME", "CLM Demo Shop"),
            default_timezone=store_timezone_name(),
            frequency_cap=os.environ.get("CLM_FREQUENCY_CAP", "3/7d"),
            quiet_hours=os.environ.get("CLM_QUIET_HOURS", "21:00-08:00"),
            smtp_host=os.environ.get("CLM_SMTP_HOST", "127.0.0.1"),
            smtp_port=int(os.environ.get("CLM_SMTP_PORT", "25")),
            smtp_starttls=os.environ.get("CLM_SMTP_STARTTLS", "0").lower() in ("1", "true", "yes"),
            smtp_user=os.environ.get("CLM_SMTP_USER") or None,
            smtp_password=os.environ.get("CLM_SMTP_PASSWORD") or None,
            mail_from=os.environ.get("CLM_MAIL_FROM", "CLM <no-reply@localhost>"),
            sms_url=os.environ.get("CLM_SMS_URL") or None,
            sms_token=os.environ.get("CLM_SMS_TOKEN") or None,
            sms_provider=os.environ.get("CLM_SMS_PROVIDER", "http").strip().lower() or "http",
            aliyun_access_key_id=os.environ.get("CLM_ALIYUN_ACCESS_KEY_ID") or None,
            aliyun_access_key_secret=os.environ.get("CLM_ALIYUN_ACCESS_KEY_SECRET") or None,
            aliyun_sms_sign_name=os.environ.get("CLM_ALIYUN_SMS_SIGN_NAME") or None,
            aliyun_sms_endpoint=os.environ.get("CLM_ALIYUN_SMS_ENDPOINT", "https://dysmsapi.aliyuncs.com/"),
            tencent_secret_id=os.environ.get("CLM_TENCENT_SECRET_ID") or None,
            tencent_secret_key=os.environ.get("CLM_TENCENT_SECRET_KEY") or None,
            tencent_sms_app_id=os.environ.get("CLM_TENCENT_SMS_APP_ID") or None,
            tencent_sms_sign_name=os.environ.get("CLM_TENCENT_SMS_SIGN_NAME") or None,
            tencent_sms_endpoint=os.environ.get(
                "CLM_TENCENT_SMS_ENDPOINT", "https://sms.tencentcloudapi.com/"
            ),
            tencent_sms_region=os.environ.get("CLM_TENCENT_SMS_REGION", "ap-guangzhou"),
            wechat_app_id=os.environ.get("CLM_WECHAT_APP_ID") or None,
            wechat_app_secret=os.environ.get("CLM_WECHAT_APP_SECRET") or None,
            wechat_api_url=os.environ.get("CLM_WECHAT_API_URL", "https://api.weixin.qq.com"),
            wechat_token=os.environ.get("CLM_WECHAT_TOKEN") or None,
            wecom_corp_id=os.environ.get("CLM_WECOM_CORP_ID") or None,
            wecom_secret=os.environ.get("CLM_WECOM_SECRET") or None,
            wecom_api_url=os.environ.get("CLM_WECOM_API_URL", "https://qyapi.weixin.qq.com"),
            wecom_sender=os.environ.get("CLM_WECOM_SENDER") or None,
            sms_receipt_token=os.environ.get("CLM_SMS_RECEIPT_TOKEN") or None,
            webhook_url=os.environ.get("CLM_WEBHOOK_URL") or None,
            currency=os.environ.get("CLM_CURRENCY", "CNY").strip().upper(),
            send_attempts=max(1, int(os.environ.get("CLM_SEND_ATTEMPTS", "3"))),
            template_max_bytes=max(1_024, int(os.environ.get("CLM_TEMPLATE_MAX_BYTES", "262144"))),
            order_statuses=os.environ.get("CLM_ORDER_STATUSES", ""),
            export_encoding=os.environ.get("CLM_EXPORT_ENCODING", "utf-8-sig").strip().lower() or "utf-8-sig",
        )


def store_timezone_name() -> str:
    """`CLM_DEFAULT_TIMEZONE` alone (read per timestamp, so cheaper than every setting)."""
    return os.environ.get("CLM_DEFAULT_TIMEZONE", "").strip() or "Asia/Shanghai"


def settings() -> Settings:
    return Settings.from_env()
