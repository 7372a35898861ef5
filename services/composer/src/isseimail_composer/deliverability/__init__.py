"""Domain readiness: SPF, DKIM, DMARC, the bounce domain's MX and (mx mode) PTR of every sender domain."""
