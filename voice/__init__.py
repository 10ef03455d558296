"""Voice notes: transcription (faster-whisper), pronunciation feedback and speech replies (Piper).

Built by the voice issue; the voice agent will consume its own stream so text replies never wait on audio.
"""
