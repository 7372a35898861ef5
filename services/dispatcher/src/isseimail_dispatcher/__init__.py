"""isseimail dispatcher: Accepted campaigns to delivered mail: batches, SMTP workers, retries."""
