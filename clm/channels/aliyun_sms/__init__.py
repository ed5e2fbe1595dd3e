"""SMS through Alibaba Cloud (阿里云短信服务): the SendSms RPC API, signed with HMAC-SHA1."""
