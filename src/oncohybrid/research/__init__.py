"""Research studies, pure: cohort queries, protocol schedules and exam windows, REDCap data
dictionaries, CONSORT counts (issue #16).
"""
