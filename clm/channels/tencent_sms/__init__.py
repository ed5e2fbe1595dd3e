"""SMS through Tencent Cloud (腾讯云短信): SendSms API 2021-01-11, signed with TC3-HMAC-SHA256."""
