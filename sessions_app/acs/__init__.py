"""Phone calls through Azure Communication Services: webhook, callbacks, media, tokens.

The pipeline does not know about ACS: these modules translate ACS's HTTP events and media
JSON into the same Conversation a browser talks to (see README "Phone calls").
"""
