"""Payments and limits: free quota, Stripe Payment Links and webhooks, daily caps, blocklist.

Built by the payments issue; the payment agent will consume Stripe events published by the orchestrator.
"""
