"""Operator tools: dashboard analytics, broadcasts, human takeover, dead letters and status.
"""
