"""isseimail list-validator: Recipient CSVs and proof that every address exists."""
