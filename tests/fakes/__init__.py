"""Local stand-ins for cloud providers, served on 127.0.0.1 for tests."""
