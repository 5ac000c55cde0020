"""Outbound webhooks (docs/webhooks.md): the sender -- one signed, bounded,
checked delivery attempt (``sender``). Their rules are ``domain.webhook``."""
