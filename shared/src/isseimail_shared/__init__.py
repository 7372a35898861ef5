"""What every isseimail service needs: settings, events, messaging, outbox, database, observability."""
