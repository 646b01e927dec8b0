"""The fellowship programme's pure rules: calls, eligibility, grant schedule, certificate
signatures (issue #13).
"""
