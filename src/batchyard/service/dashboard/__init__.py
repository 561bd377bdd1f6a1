"""The web dashboard at `/ui`: sign-in sessions, the static page, and the session-authorised API proxy."""
