"""WhatsApp channels: Meta Cloud API, Twilio and the local console, each with its webhook parser
beside its sender; media, chunking and the 24-hour window.
"""
