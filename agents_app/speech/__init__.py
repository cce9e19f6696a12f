"""Speech engines: recognition (stt/) and synthesis (tts/), each behind a small protocol."""
