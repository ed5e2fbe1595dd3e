"""WeCom (企业微信) customer-contact messages."""
