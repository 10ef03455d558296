"""Tutoring: the LLM clients and their router, the prompt and structured reply, the turn through the
models, commands, practice, flashcards and insights.
"""
