"""isseimail pass-service: 1DayPass: applications, passes, administrators, logins, consumption."""
