"""Tumour-board rules without storage (issue #15): the weekly schedule, the agenda's
timing, the preparation checklist, follow-up due dates and the response vocabulary.

Everything here takes plain values and returns plain values; the services
(:mod:`oncohybrid.services.boards`) read and write the database around it.
"""

from oncohybrid.boards.agenda import AgendaSlot, agenda
from oncohybrid.boards.checklist import CHECKLIST, CaseFacts, ChecklistItem, checklist
from oncohybrid.boards.followup import follow_up_due, follow_up_state
from oncohybrid.boards.schedule import parse_hhmm, parse_weekday, session_dates
from oncohybrid.boards.vocabulary import category_text, spelled_out

__all__ = [
    "AgendaSlot",
    "agenda",
    "CHECKLIST",
    "ChecklistItem",
    "CaseFacts",
    "checklist",
    "follow_up_due",
    "follow_up_state",
    "parse_hhmm",
    "parse_weekday",
    "session_dates",
    "category_text",
    "spelled_out",
]
