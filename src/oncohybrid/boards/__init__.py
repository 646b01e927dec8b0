"""Tumour boards, pure: schedules, agendas, case preparation checklists (issue #15).
"""
