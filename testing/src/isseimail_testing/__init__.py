"""Test helpers every service reuses: throwaway database and vhost, SMTP capture, DNS, TCP proxy."""
