"""Twilio WhatsApp: the REST client and Content API (out), the webhook parser and signature check (in).
"""
