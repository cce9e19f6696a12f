"""Call recordings (RECORD_SESSIONS): a stereo WAV per session, caller left, agent right."""
