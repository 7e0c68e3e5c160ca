"""Built-in DNS providers; each module holds one DNSProvider subclass."""
