"""isseimail gateway: Web UI and JSON API in front of the other services."""
