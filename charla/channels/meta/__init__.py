"""Meta WhatsApp Cloud API: the Graph API client (out), the webhook parser and signature check (in).
"""
