"""WeChat Official Account (微信公众号) template messages to a follower's OpenID."""
