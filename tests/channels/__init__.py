"""Tests of the WhatsApp channels (charla/channels)."""
